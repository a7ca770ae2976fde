"""Just enough shell (and PowerShell) reading for the content inspector: no parser, no eval.

The inspector asks three questions of a line of code: where its commands start and end, which
word of a command is the program it runs once wrappers (`sudo -E`, `env X=1`, `nohup`) are
skipped, and whether that program is an interpreter. Each answer is one left-to-right pass over
the line, so the inspector stays linear in its input whatever the input is.

`normalise` undoes the cheap tricks that keep a word from matching (`c''url`, `c\\url`,
`curl${IFS}http://...`); what it cannot undo (variables built at run time, `$'\\x63url'`) is
listed in the README as a known gap.
"""

from __future__ import annotations

import re

MAX_TOKENS = 64
"""Words of one command looked at; a real command line names its program in the first few."""
MAX_PIPES = 32
"""Pipes of one command looked at (each costs a look at the few hundred characters after it)."""
_AFTER_PIPE = 400

_SPECIAL = re.compile(r"[;&|\n]")
_PATH_SEPARATOR = re.compile(r"[/\\]")
_EMPTY_QUOTES = re.compile(r"''|\"\"")
_IFS = re.compile(r"\$\{IFS[^}\s]{0,12}\}|\$IFS\b")
_LETTER_ESCAPE = re.compile(r"(?<=[a-z])\\(?=[a-z])")
_WINDOWS_PATH_HINTS = (":\\", "$env:", "%\\", ".exe", ".ps1", ".bat", ".cmd")

WRAPPERS = frozenset(
    {
        "sudo",
        "doas",
        "env",
        "nohup",
        "exec",
        "command",
        "builtin",
        "time",
        "nice",
        "ionice",
        "setsid",
        "stdbuf",
        "timeout",
        "runuser",
        "su",
        "chroot",
        "xargs",
        "busybox",
    }
)
"""Programs that run the next word as the real program (`sudo -E bash`, `busybox sh`)."""
_WRAPPER_FLAGS_WITH_VALUE = frozenset({"-u", "-g", "-n", "-I", "-U", "-C"})
"""Wrapper flags that take the next word as their value (`sudo -u root bash`)."""

_INTERPRETER = re.compile(
    r"^(?:(?:ba|z|k|da|a|fi|tc|c|mk|pdk|ml)?sh|python[0-9.]*|pypy[0-9.]*|perl[0-9.]*"
    r"|php[0-9.]*|php-cgi|ruby[0-9.]*|jruby|irb|node(?:js)?|deno|bun|pwsh|powershell(?:_ise)?"
    r"|iex|invoke-expression|lua[0-9.]*|luajit|tclsh[0-9.]*|osascript|rscript|groovy|jshell"
    r"|source|\.)$"
)
"""Programs that run the text they are given as code: shells, script languages, PowerShell,
and the shells' `source`/`.`. `iex` is PowerShell's alias for Invoke-Expression."""


def normalise(line: str) -> str:
    """The line with empty quotes, `$IFS` and letter escapes removed (case kept)."""
    text = _EMPTY_QUOTES.sub("", line)
    text = _IFS.sub(" ", text)
    lowered = text.lower()
    if "\\" in text and not any(hint in lowered for hint in _WINDOWS_PATH_HINTS):
        text = _LETTER_ESCAPE.sub("", text)
    return text


def commands(line: str) -> list[str]:
    """The line cut at `;`, `&&`, `||`, a lone `&` and newlines, outside quotes and brackets.

    Pipes stay inside a command: `curl x | bash` is one command whose parts are joined.
    """
    if not _SPECIAL.search(line):
        return [line.strip()] if line.strip() else []
    found: list[str] = []
    start = depth = 0
    quote = ""
    index, length = 0, len(line)
    while index < length:
        char = line[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char in "({":
            depth += 1
        elif char in ")}":
            depth = max(depth - 1, 0)
        elif depth == 0 and _is_separator(line, index):
            found.append(line[start:index])
            step = 2 if line[index : index + 2] in ("&&", "||") else 1
            index += step
            start = index
            continue
        index += 1
    found.append(line[start:])
    return [command.strip() for command in found if command.strip()]


def _is_separator(line: str, index: int) -> bool:
    char = line[index]
    if char in ";\n":
        return True
    pair = line[index : index + 2]
    if pair in ("&&", "||"):
        return True
    if char != "&":
        return False
    before = line[index - 1] if index else " "
    after = line[index + 1] if index + 1 < len(line) else " "
    # `2>&1`, `&>file` and `>&2` are redirections, not a background `&`.
    return before not in "<>&|" and after not in "<>&|0123456789"


def words(command: str) -> list[str]:
    """Whitespace-separated words, quotes stripped from their ends, at most MAX_TOKENS."""
    return [word.strip("'\"`()") for word in command.split(None, MAX_TOKENS)[:MAX_TOKENS]]


def program_index(tokens: list[str]) -> int | None:
    """Index of the word a command runs, after wrappers, their flags and `VAR=value`s."""
    index = 0
    skip_value = False
    wrapped = False
    while index < len(tokens):
        token = tokens[index]
        name = program_name(token)
        if skip_value:
            skip_value = False
        elif wrapped and token.startswith("-"):
            skip_value = token in _WRAPPER_FLAGS_WITH_VALUE
        elif _is_assignment(token) or (wrapped and token.isdigit()):
            pass
        elif name in WRAPPERS:
            wrapped = True
        elif token:
            return index
        index += 1
    return None


def program_name(token: str) -> str:
    """`/usr/bin/Python3.exe` -> `python3.exe` minus `.exe`: the basename, lowercased."""
    base = _PATH_SEPARATOR.split(token)[-1].lower()
    return base[:-4] if base.endswith(".exe") else base


def is_interpreter(token: str) -> bool:
    return bool(_INTERPRETER.match(program_name(token)))


def _is_assignment(token: str) -> bool:
    name, sep, _ = token.partition("=")
    return bool(sep) and name.isidentifier()


def piped_interpreter(command: str, after: int) -> int | None:
    """Position of the first `| <interpreter>` in the command at or after `after`, else None."""
    index = command.find("|", after)
    looked = 0
    while index != -1 and looked < MAX_PIPES:
        looked += 1
        is_or = command[index : index + 2] == "||" or (index and command[index - 1] == "|")
        if not is_or:
            rest = words(command[index + 1 : index + _AFTER_PIPE])
            position = program_index(rest)
            if position is not None and is_interpreter(rest[position]):
                return index
        index = command.find("|", index + 2)
    return None
