"""Fetch and execute as separate facts, joined within one document (or one set of parameters).

One regular expression per line misses every way of splitting the two halves: `bash <(curl …)`,
`bash -c "$(curl …)"`, `curl … | sudo -E /bin/bash`, `wget -qO- … | python3`, a download on one
line and `chmod +x; ./x` on the next, Python's `urllib` + `exec`. So the inspector records facts
as it reads the lines in order, and joins them:

- a **stream** fetch (the program writes what it fetched to stdout: `curl`, `wget -O-`,
  `aws s3 cp s3://… -`, `iwr`) piped into an interpreter in the same command;
- a fetch inside `$(…)`, `<(…)` or backquotes handed to an interpreter, `eval` or `source`, or
  stored in a shell variable that one of those later runs;
- a **file** fetch (`curl -o`, `wget`, `aws s3 cp`, `Invoke-WebRequest -OutFile`, `urlretrieve`,
  `DownloadFile`, `certutil -urlcache`) followed, later in the document, by running that file
  (`./x`, `/tmp/x`, `bash x`, `python3 x`, `chmod +x x`, `& x`, `Start-Process x`), matched on
  the file's name;
- an **in-memory** fetch in a script language (Python, Perl, Ruby, Node, PHP, PowerShell) and a
  dynamic evaluation (`exec(`, `eval`, `iex`, `new Function(`, `[ScriptBlock]::Create`) in
  the same document;
- a reverse shell spread over a script: a socket to somewhere and a shell or descriptor
  duplication (`fsockopen` + `exec("/bin/sh -i …")`, `socket.socket` + `pty.spawn`).

Every fact is found by a bounded pattern or a single pass over a command's words, and joins are
dictionary look-ups, so the work is linear in the text; at most `MAX_FILES` fetched names and
`MAX_VARIABLES` variables are remembered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from detections.content_shell import (
    commands,
    is_interpreter,
    piped_interpreter,
    program_index,
    program_name,
    words,
)

MAX_FILES = 256
MAX_VARIABLES = 64
MAX_JOINS = 20
_SEGMENT = 800
"""Characters after a fetch program's name read for its arguments."""

DOWNLOAD_EXECUTE = "download_execute"
REVERSE_SHELL = "reverse_shell"

_F = re.IGNORECASE
_FETCH_PROGRAM = re.compile(
    r"(?<![\w.$-])(curl|wget|aria2c|lwp-download|invoke-webrequest|iwr|invoke-restmethod|irm"
    r"|start-bitstransfer|certutil|bitsadmin)(?:\.exe)?(?![\w.-])",
    _F,
)
_CLOUD_COPY = re.compile(
    r"(?<![\w.-])(?:aws(?:\.exe)?\s+s3\s+(cp|mv|sync)|gsutil\s+(cp)|aws(?:\.exe)?\s+s3api"
    r"\s+(get-object))(?![\w-])",
    _F,
)
_PATH_SEPARATOR = re.compile(r"[/\\]")
_URL = re.compile(r"(?:https?|ftp|tftp|s3)://[^\s'\"|;&)<>`]{1,400}", _F)
_REDIRECT = re.compile(r"(?<![0-9&>])>{1,2}\s*([^\s&|;><]+)")
_CURL_OUTPUT = re.compile(r"(?:^|\s)(?:-[a-zA-Z]*o\s*|--output[= ]\s*)([^\s|;&]+)")
_CURL_REMOTE_NAME = re.compile(r"(?:^|\s)(?:-[a-zA-Z]*O[a-zA-Z]*|--remote-name(?:-all)?)(?=\s|$)")
_WGET_OUTPUT = re.compile(r"(?:^|\s)(?:-[a-zA-Z]*O\s*|--output-document[= ]\s*)([^\s|;&]+)")
_WGET_DIRECTORY = re.compile(r"(?:^|\s)(?:-P\s*|--directory-prefix[= ]\s*)([^\s|;&]+)")
_OUTFILE = re.compile(r"(?:^|\s)-(?:outfile|destination|o)\s+([^\s|;&]+)", _F)
_LAST_WORD = re.compile(r"([^\s|;&]+)\s*$")
_DOWNLOAD_FILE = re.compile(
    r"(?:\.downloadfile(?:async)?|\burlretrieve|\bgetstore|\bcopy)\s*\(\s*[^,()]{1,400},\s*"
    r"[\"']?([^\"',()\s]{1,300})",
    _F,
)
_SUBSTITUTION = re.compile(r"\$\(|<\(|`")
_ASSIGNED_FETCH = re.compile(
    r"\b([A-Za-z_]\w{0,63})=[\"']?(?:\$\(|`)[^)`]{0,200}?(?<![\w.-])(?:curl|wget|aws\s+s3\s+cp"
    r"|iwr|irm)\b",
    _F,
)
_POWERSHELL_ASSIGNED_FETCH = re.compile(
    r"\$([A-Za-z_]\w{0,63})\s*=\s*[^;\n]{0,200}?(?:invoke-webrequest|invoke-restmethod|\biwr\b"
    r"|\birm\b|\.download(?:string|data))",
    _F,
)


def _lowercase_words(starting_with_a_word: str, other: str = "") -> re.Pattern[str]:
    """A pattern over lowercased text whose word alternatives share one word-boundary check.

    With a boundary inside each alternative the engine tries them all at every position (ten
    times slower on long lines); one look-behind in front lets it skip to a first letter."""
    words_part = rf"(?<![a-z0-9_])(?:{starting_with_a_word})"
    return re.compile(f"{words_part}|{other}" if other else words_part)


# Script-language facts, matched against the lowercased line.
_MEMORY_FETCH = _lowercase_words(
    r"urlopen\s*\(|urllib[23]?\.request\b|requests\.(?:get|post|request)\s*\("
    r"|httpx\.(?:get|post|stream)\s*\(|http\.client\b|urllib3\b"
    r"|lwp::(?:simple|useragent)|http::tiny\b"
    r"|open-uri\b|uri\.open\s*\(|net::http\b|(?:url)?open\s*\(\s*[\"']https?://"
    r"|https?\.get\s*\(|axios\b"
    r"|fetch\s*\(\s*[\"'`]https?://|file_get_contents\s*\(\s*[\"']https?://"
    r"|fopen\s*\(\s*[\"']https?://|curl_exec\s*\("
    r"|net\.webclient\b|invoke-(?:webrequest|restmethod)\b|(?:iwr|irm)\b"
    r"|msxml2\.xmlhttp\b|winhttp\.winhttprequest\b",
    r"require\s*\(\s*[\"'](?:node:)?https?[\"']\s*\)|\.download(?:string|data)\s*\(",
)
_EVALUATION = _lowercase_words(
    r"(?:exec|eval|execfile)\s*\(|eval\s+[\"'$`\w]|(?:instance|class)_eval\b"
    r"|new\s+function\s*\(|vm\.run\w*\s*\(|create_function\s*\(|assert\s*\(\s*\$"
    r"|invoke-expression\b|iex\b|(?:pickle|marshal)\.loads\s*\("
    r"|(?:include|require)(?:_once)?\s*\(?\s*[\"'](?:https?|ftp)://",
    r"\[scriptblock\]::create",
)
_SOCKET = _lowercase_words(
    r"fsockopen\s*\(|socket\.socket\s*\(|socket\s*\(\s*\w+\s*,\s*(?:pf|af)_inet"
    r"|io::socket::inet\b|tcpsocket\.(?:new|open)\b|net\.(?:connect|createconnection)\s*\("
    r"|new\s+net\.socket\b|net\.sockets\.tcpclient\b"
)
_SPAWN = _lowercase_words(
    r"sh\s+-i\b|cmd(?:\.exe)?\s+/[ck]\b|pty\.spawn\b|os\.dup2\b"
    r"|subprocess\.|child_process\b|proc_open\s*\(|shell_exec\s*\(|passthru\s*\("
    r"|popen\s*\(|spawn\s*\(|open\s*\(\s*stdin\b|io\.popen\b|exec\s*\{"
    r"|start-process\b",
    r"/bin/(?:ba|z|k|da)?sh\b|\$sendback\b",
)
_INLINE_CODE_FLAGS = frozenset(
    {"-c", "-e", "-r", "-command", "-encodedcommand", "-enc", "-ec", "-x", "-m"}
)
_FILE_FLAGS = frozenset({"-file", "-f"})
_LAUNCHERS = frozenset(
    {"&", "start-process", "saps", "start", "invoke-item", "ii", "invoke-command"}
)
_EVAL_WORDS = frozenset({"eval", "exec", "source", ".", "iex", "invoke-expression"})
_EXECUTABLE_MODE = re.compile(r"^(?:[ugoa]*\+[rwX]*x[rwX]*|[0-7]?[0-7]*[1357][0-7]*)$")
_S3_VALUE_FLAGS = frozenset(
    {
        "--region",
        "--profile",
        "--endpoint-url",
        "--sse",
        "--sse-kms-key-id",
        "--acl",
        "--storage-class",
        "--exclude",
        "--include",
        "--bucket",
        "--key",
        "--source-region",
        "--request-payer",
        "--expected-size",
        "--version-id",
        "--output",
        "--query",
    }
)


# Cheap gates: each pattern runs only on text that holds one of its literal words (a substring
# test in C), so ordinary lines cost a few scans and no regular expression at all.
_FETCH_WORDS = ("curl", "wget", "aria2c", "lwp-", "invoke-", "iwr", "irm", "bits", "certutil")
_COPY_WORDS = ("s3", "gsutil")
_DOWNLOAD_FILE_WORDS = ("download", "urlretrieve", "getstore", "copy")
_MEMORY_WORDS = (
    *("url", "request", "http", "lwp", "uri", "net::", "fetch", "axios", "file_get", "fopen"),
    *("download", "webclient", "invoke-", "iwr", "irm", "xmlhttp"),
)
_EVALUATION_WORDS = (
    *("exec", "eval", "function", "vm.", "assert", "iex", "invoke-expression", "scriptblock"),
    *("loads", "include", "require"),
)
_SOCKET_WORDS = ("sock", "tcp", "net.")
_SPAWN_WORDS = (
    *("/bin/", "sh -i", "cmd", "pty", "dup2", "subprocess", "child_process", "proc_open"),
    *("shell_exec", "passthru", "popen", "spawn", "stdin", "exec", "start-process", "sendback"),
)


def _mentions(lowered: str, literals: tuple[str, ...]) -> bool:
    return any(literal in lowered for literal in literals)


@dataclass(frozen=True)
class Joined:
    """A fetch and an execution the inspector joined."""

    rule_id: str
    line_number: int
    """Where the join completed: the line that runs (or the later half)."""
    related_line_number: int
    """Where the other half is (the fetch, or the socket): the same line when both are on it."""
    how: str


@dataclass
class FactJoiner:
    """Facts of one document, fed line by line in order; `joined` holds what was joined."""

    files: dict[str, int] = field(default_factory=dict)
    """Fetched file name (basename, lowercased) -> line of the fetch."""
    directories: dict[str, int] = field(default_factory=dict)
    variables: dict[str, int] = field(default_factory=dict)
    """Shell or PowerShell variables holding fetched text -> line of the fetch."""
    memory_fetch: int | None = None
    evaluation: int | None = None
    socket: int | None = None
    spawn: int | None = None
    joined: list[Joined] = field(default_factory=list)
    _joined_lines: set[tuple[str, int]] = field(default_factory=set)

    def feed(self, number: int, line: str) -> None:
        """Record the facts on one (normalised) line and join them with earlier ones."""
        if len(self.joined) >= MAX_JOINS:
            return
        for command in commands(line):
            self._command(number, command)
        self._language_facts(number, line)

    # -- shell commands ----------------------------------------------------------------------

    def _command(self, number: int, command: str) -> None:
        lowered = command.lower()
        fetches = _mentions(lowered, _FETCH_WORDS)
        copies = _mentions(lowered, _COPY_WORDS)
        if fetches or copies:
            self._substitutions(number, command)
        if "$" in command:
            self._variables(number, command)
        if fetches:
            for match in _FETCH_PROGRAM.finditer(command):
                self._fetch_program(number, command, match)
        if copies:
            for match in _CLOUD_COPY.finditer(command):
                self._cloud_copy(number, command, match)
        if _mentions(lowered, _DOWNLOAD_FILE_WORDS):
            for match in _DOWNLOAD_FILE.finditer(command):
                self._remember_file(match.group(1), number)
        self._runs_file(number, command)

    def _fetch_program(self, number: int, command: str, match: re.Match[str]) -> None:
        program = match.group(1).lower()
        segment = command[match.end() : match.end() + _SEGMENT]
        pipe = segment.find("|")
        own = segment if pipe == -1 else segment[:pipe]
        outputs, stream = _outputs(program, own)
        for path in outputs:
            self._remember_file(path, number)
        if stream and piped_interpreter(command, match.end()) is not None:
            self._join(DOWNLOAD_EXECUTE, number, number, f"{program} piped into an interpreter")

    def _cloud_copy(self, number: int, command: str, match: re.Match[str]) -> None:
        verb = (match.group(1) or match.group(2) or match.group(3)).lower()
        tokens = _positional(words(command[match.end() : match.end() + _SEGMENT]))
        if verb == "get-object":
            if tokens:
                self._remember_file(tokens[-1], number)
            return
        if len(tokens) < 2 or not tokens[0].lower().startswith(("s3://", "gs://")):
            return  # an upload or a local copy
        source, target = tokens[0], tokens[1]
        if target == "-":
            if piped_interpreter(command, match.end()) is not None:
                self._join(DOWNLOAD_EXECUTE, number, number, "object store copy piped to a shell")
        elif verb == "sync" or target.endswith(("/", "\\")) or target in (".", ".."):
            if verb == "sync":
                self._remember_directory(target, number)
            self._remember_file(_basename(source), number)
        else:
            self._remember_file(target, number)

    def _substitutions(self, number: int, command: str) -> None:
        """`bash <(curl …)`, `bash -c "$(wget -qO- …)"`, `eval "$(curl …)"`, `. <(…)`."""
        if "(" not in command and "`" not in command:
            return
        for match in _SUBSTITUTION.finditer(command):
            inner = command[match.end() : match.end() + _SEGMENT]
            if not (_FETCH_PROGRAM.search(inner) or _CLOUD_COPY.search(inner)):
                continue
            before = words(command[max(0, match.start() - 200) : match.start()])[-8:]
            if any(is_interpreter(word) or word.lower() in _EVAL_WORDS for word in before):
                how = "fetched code substituted into an interpreter"
                self._join(DOWNLOAD_EXECUTE, number, number, how)
                return

    def _variables(self, number: int, command: str) -> None:
        """`s=$(curl …)` remembered; `eval "$s"`, `bash -c "$s"`, `echo $s | sh`, `iex $s` run."""
        for pattern in (_ASSIGNED_FETCH, _POWERSHELL_ASSIGNED_FETCH):
            for match in pattern.finditer(command):
                if len(self.variables) < MAX_VARIABLES:
                    self.variables.setdefault(match.group(1).lower(), number)
        if not self.variables or "$" not in command:
            return
        tokens = words(command)
        index = program_index(tokens)
        runs = index is not None and (
            is_interpreter(tokens[index]) or tokens[index].lower() in _EVAL_WORDS
        )
        piped = piped_interpreter(command, 0) is not None
        if not (runs or piped):
            return
        lowered = command.lower()
        for name, fetched_at in self.variables.items():
            used = f"${name}" in lowered or f"${{{name}}}" in lowered
            if used and (fetched_at < number or not _assigns(lowered, name)):
                self._join(DOWNLOAD_EXECUTE, number, fetched_at, f"fetched text in ${name} run")
                return

    def _runs_file(self, number: int, command: str) -> None:
        if not (self.files or self.directories):
            return
        for path in _executed_paths(words(command)):
            name = _basename(path)
            fetched_at = self.files.get(name) if name else None
            if fetched_at is None:
                fetched_at = self._directory_of(path)
            if fetched_at is not None:
                self._join(DOWNLOAD_EXECUTE, number, fetched_at, f"fetched file {name} run")
                return

    # -- script languages --------------------------------------------------------------------

    def _language_facts(self, number: int, line: str) -> None:
        lowered = line.lower()
        if self.memory_fetch is None and _found(_MEMORY_FETCH, _MEMORY_WORDS, lowered):
            self.memory_fetch = number
        if self.evaluation is None and _found(_EVALUATION, _EVALUATION_WORDS, lowered):
            self.evaluation = number
        if self.socket is None and _found(_SOCKET, _SOCKET_WORDS, lowered):
            self.socket = number
        shebang = line.startswith("#!")
        if self.spawn is None and not shebang and _found(_SPAWN, _SPAWN_WORDS, lowered):
            self.spawn = number
        if self.memory_fetch is not None and self.evaluation is not None:
            first, last = sorted((self.memory_fetch, self.evaluation))
            self._join(DOWNLOAD_EXECUTE, last, first, "fetched text evaluated in memory")
        if self.socket is not None and self.spawn is not None:
            first, last = sorted((self.socket, self.spawn))
            self._join(REVERSE_SHELL, last, first, "socket joined to a shell")

    # -- bookkeeping -------------------------------------------------------------------------

    def _remember_file(self, path: str, number: int) -> None:
        name = _basename(path)
        if name and len(self.files) < MAX_FILES:
            self.files.setdefault(name, number)

    def _remember_directory(self, path: str, number: int) -> None:
        prefix = path.strip("'\"").rstrip("/\\").lower()
        if prefix and len(self.directories) < MAX_FILES:
            self.directories.setdefault(prefix, number)

    def _directory_of(self, path: str) -> int | None:
        lowered = path.strip("'\"").lower()
        for prefix, number in self.directories.items():
            if lowered.startswith((prefix + "/", prefix + "\\")):
                return number
        return None

    def _join(self, rule_id: str, number: int, related: int, how: str) -> None:
        if (rule_id, number) in self._joined_lines or len(self.joined) >= MAX_JOINS:
            return
        self._joined_lines.add((rule_id, number))
        self.joined.append(Joined(rule_id, number, related, how))


def _found(pattern: re.Pattern[str], literals: tuple[str, ...], lowered: str) -> bool:
    return _mentions(lowered, literals) and pattern.search(lowered) is not None


def _outputs(program: str, arguments: str) -> tuple[list[str], bool]:
    """Files a fetch program writes, and whether it writes what it fetched to stdout."""
    url = _URL.search(arguments)
    from_url = _basename(url.group(0)) if url else ""
    redirect = [m.group(1) for m in _REDIRECT.finditer(arguments)]
    if program == "curl":
        named = [m.group(1) for m in _CURL_OUTPUT.finditer(arguments)]
        if _CURL_REMOTE_NAME.search(arguments) and from_url:
            named.append(from_url)
        named += _outfiles(arguments)
    elif program == "wget":
        named = [m.group(1) for m in _WGET_OUTPUT.finditer(arguments)]
        if not named and from_url:
            directory = _WGET_DIRECTORY.search(arguments)
            named = [f"{directory.group(1)}/{from_url}" if directory else from_url]
            # `wget URL | sh` writes a file, not stdout; the intent is plain, so it still joins.
            return [*named, *redirect], True
    elif program in ("certutil", "bitsadmin"):
        last = _LAST_WORD.search(arguments)
        named = [last.group(1)] if last and "://" not in last.group(1) else []
    else:  # PowerShell: Invoke-WebRequest / Invoke-RestMethod / Start-BitsTransfer
        named = _outfiles(arguments)
    files = [path for path in [*named, *redirect] if path.strip("'\"") != "-"]
    stream = not files or any(path.strip("'\"") == "-" for path in named)
    return files, stream


def _outfiles(arguments: str) -> list[str]:
    return [m.group(1) for m in _OUTFILE.finditer(arguments)]


def _positional(tokens: list[str]) -> list[str]:
    found: list[str] = []
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token.startswith("--"):
            skip = token.lower() in _S3_VALUE_FLAGS
        elif token:
            found.append(token)
    return found


def _executed_paths(tokens: list[str]) -> list[str]:
    """Paths a command runs: its program when it is a path, an interpreter's script, the files
    `chmod +x` makes executable, what `&`/`Start-Process` launch."""
    index = program_index(tokens)
    if index is None:
        return []
    head, rest = tokens[index], tokens[index + 1 :]
    name = program_name(head)
    if name == "chmod":
        return _made_executable(rest)
    if is_interpreter(head):
        return _script_of(rest)
    if "/" in head or "\\" in head:
        return [head]
    if name in _LAUNCHERS:
        return [t for t in rest if not t.startswith("-")][:1]
    return []


def _made_executable(arguments: list[str]) -> list[str]:
    if not any(_EXECUTABLE_MODE.match(token) for token in arguments):
        return []
    return [t for t in arguments if not t.startswith("-") and not _EXECUTABLE_MODE.match(t)]


def _script_of(arguments: list[str]) -> list[str]:
    take_next = False
    for token in arguments:
        lowered = token.lower()
        if take_next:
            return [token]
        if lowered in _INLINE_CODE_FLAGS:
            return []
        if lowered in _FILE_FLAGS:
            take_next = True
        elif not token.startswith("-"):
            return [token]
    return []


def _basename(path: str) -> str:
    cleaned = path.strip("'\"`;)(").split("?", 1)[0].split("#", 1)[0]
    return _PATH_SEPARATOR.split(cleaned)[-1].lower()


def _assigns(command: str, name: str) -> bool:
    return f"{name}=" in command or f"${name} =" in command or f"${name}=" in command
