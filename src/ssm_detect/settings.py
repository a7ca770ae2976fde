"""Detection settings: plain data, read from the environment only by the entry points."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ssm_detect.findings import Severity
from ssm_detect.principal import Principal, PrincipalKeying

ANY_DETECTION = "*"
_ALLOW_RULE_KEYS = frozenset({"principals", "documents"})
# What a malformed setting can raise while it is parsed (json, float(), enum lookups, a
# timedelta of 1e12 days, ...).
_PARSE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, OverflowError)


@dataclass(frozen=True)
class SettingProblem:
    """One environment variable that could not be used: the detector runs on its default."""

    variable: str
    reason: str


@dataclass(frozen=True)
class AllowRule:
    """Principals (ARN or key patterns, `fnmatch` syntax) and documents that never alert."""

    principals: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Allowlist:
    rules: Mapping[str, AllowRule] = field(default_factory=dict)
    """Detection id (or `*` for all) -> what it must not alert on."""

    def allows(self, detection_id: str, principal: Principal, document: str | None) -> bool:
        for rule_id in (detection_id, ANY_DETECTION):
            rule = self.rules.get(rule_id)
            if rule and (_principal_matches(rule, principal) or _document_matches(rule, document)):
                return True
        return False

    @classmethod
    def from_json(cls, text: str) -> Allowlist:
        raw = json.loads(text or "{}")
        if not isinstance(raw, dict):
            raise ValueError("the allowlist must be a JSON object keyed by detection id")
        rules = {}
        for detection_id, entry in raw.items():
            if not isinstance(entry, dict):
                raise ValueError(f"allowlist entry for {detection_id} must be an object")
            unknown = set(entry) - _ALLOW_RULE_KEYS
            if unknown:
                raise ValueError(
                    f"allowlist entry for {detection_id}: unknown keys {sorted(unknown)}"
                )
            rules[str(detection_id)] = AllowRule(
                principals=_strings(entry.get("principals", []), f"{detection_id}.principals"),
                documents=_strings(entry.get("documents", []), f"{detection_id}.documents"),
            )
        return cls(rules)


def _strings(value: object, where: str) -> tuple[str, ...]:
    # A bare string would otherwise be read as a list of one-character patterns, one of which
    # could be "*": an allowlist that silences everything.
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"allowlist {where} must be a JSON list of strings")
    return tuple(value)


def _principal_matches(rule: AllowRule, principal: Principal) -> bool:
    names = [n for n in (principal.key, principal.arn, principal.role_arn) if n]
    return any(fnmatch.fnmatchcase(n, p) for p in rule.principals for n in names)


def _document_matches(rule: AllowRule, document: str | None) -> bool:
    return document is not None and any(fnmatch.fnmatchcase(document, d) for d in rule.documents)


@dataclass(frozen=True)
class Settings:
    history_window: timedelta = timedelta(days=10)
    """Rare creator: a principal is new if it created no Command document within this."""
    fanout_threshold: int = 2
    """Distributed command: fire when distinct instances in the window exceed this (Panther: 2)."""
    fanout_window: timedelta = timedelta(minutes=60)
    chain_window: timedelta = timedelta(hours=24)
    """Created-document-executed: how long after a rare creation an execution still links."""
    suppression_window: timedelta = timedelta(minutes=60)
    suppression_overrides: Mapping[str, timedelta] = field(default_factory=dict)
    """Detection id -> its own suppression window."""
    principal_keying: PrincipalKeying = PrincipalKeying.ROLE
    include_service_principals: bool = False
    """Whether AWS service principals (State Manager, ...) feed the stateful detections."""
    allowlist: Allowlist = field(default_factory=Allowlist)
    automation_principals: tuple[str, ...] = ()
    """Patterns of known automation: its findings are kept but lowered two severity steps."""
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)
    silence_limit: timedelta = timedelta(minutes=60)
    """Heartbeats: a source whose latest heartbeat is older than this is silent."""
    trusted_accounts: frozenset[str] = frozenset()
    """The organisation's accounts: sharing a document with them is not an alert. Empty: any
    account other than the document's own is outside."""
    known_output_buckets: tuple[str, ...] = ()
    """Buckets (`fnmatch` patterns) SendCommand output may go to; empty: not checked."""
    # Issue 13: sessions, secrets, activations (README, "The detections").
    session_fanout_threshold: int = 2
    """Session fan-out: fire when distinct StartSession targets in the window exceed this."""
    session_fanout_window: timedelta = timedelta(minutes=60)
    secret_read_threshold: int = 10
    """SecureString harvesting: fire above this many distinct decrypted names (Panther: 10)."""
    secret_read_window: timedelta = timedelta(minutes=60)
    activation_roles: tuple[str, ...] = ()
    """Role name / ARN patterns hybrid activations may hand out; any other role is HIGH."""
    # Issue 12 points 3-5 and 7: attribution of service-issued commands, probing.
    attribution_window: timedelta = timedelta(days=14)
    """How long after an association, automation start or window task its service-issued
    SendCommands are still attributed to whoever configured it."""
    probe_failures: int = 3
    """Probing: failed SendCommands before a success within `probe_window` that fire."""
    probe_window: timedelta = timedelta(minutes=30)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build from `HISTORY_WINDOW_DAYS`, `FANOUT_*`, ...; raise ValueError on bad values."""
        defaults = cls()
        overrides = _json_object(env, "SEVERITY_OVERRIDES_JSON")
        suppressions = _json_object(env, "SUPPRESSION_OVERRIDES_JSON")
        settings = cls(
            history_window=timedelta(
                days=_number(env, "HISTORY_WINDOW_DAYS", defaults.history_window.days)
            ),
            fanout_threshold=int(_number(env, "FANOUT_THRESHOLD", defaults.fanout_threshold)),
            fanout_window=timedelta(minutes=_number(env, "FANOUT_WINDOW_MINUTES", 60)),
            chain_window=timedelta(hours=_number(env, "CHAIN_WINDOW_HOURS", 24)),
            suppression_window=timedelta(minutes=_number(env, "SUPPRESSION_WINDOW_MINUTES", 60)),
            principal_keying=PrincipalKeying(env.get("PRINCIPAL_KEYING") or "role"),
            include_service_principals=_flag(env, "INCLUDE_SERVICE_PRINCIPALS"),
            allowlist=Allowlist.from_json(env.get("ALLOWLIST_JSON") or "{}"),
            automation_principals=_patterns(env, "AUTOMATION_PRINCIPALS_JSON"),
            severity_overrides={str(k): Severity(str(v).upper()) for k, v in overrides.items()},
            silence_limit=timedelta(minutes=_number(env, "SILENCE_LIMIT_MINUTES", 60)),
            suppression_overrides={
                str(k): timedelta(minutes=float(str(v))) for k, v in suppressions.items()
            },
            trusted_accounts=frozenset(_patterns(env, "TRUSTED_ACCOUNTS_JSON")),
            known_output_buckets=_patterns(env, "KNOWN_OUTPUT_BUCKETS_JSON"),
            session_fanout_threshold=int(
                _number(env, "SESSION_FANOUT_THRESHOLD", defaults.session_fanout_threshold)
            ),
            session_fanout_window=timedelta(
                minutes=_number(env, "SESSION_FANOUT_WINDOW_MINUTES", 60)
            ),
            secret_read_threshold=int(
                _number(env, "SECRET_READ_THRESHOLD", defaults.secret_read_threshold)
            ),
            secret_read_window=timedelta(minutes=_number(env, "SECRET_READ_WINDOW_MINUTES", 60)),
            activation_roles=_patterns(env, "ACTIVATION_ROLES_JSON"),
            attribution_window=timedelta(
                days=_number(env, "ATTRIBUTION_WINDOW_DAYS", defaults.attribution_window.days)
            ),
            probe_failures=int(_number(env, "PROBE_FAILURES", defaults.probe_failures)),
            probe_window=timedelta(minutes=_number(env, "PROBE_WINDOW_MINUTES", 30)),
        )
        for name, value in (
            ("FANOUT_THRESHOLD", settings.fanout_threshold),
            ("SESSION_FANOUT_THRESHOLD", settings.session_fanout_threshold),
            ("SECRET_READ_THRESHOLD", settings.secret_read_threshold),
            ("PROBE_FAILURES", settings.probe_failures),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        return settings

    @classmethod
    def from_env_failsafe(cls, env: Mapping[str, str]) -> tuple[Settings, list[SettingProblem]]:
        """Like `from_env`, but a variable that does not parse is replaced by its default
        (no allowlist, no overrides, no automation, the default numbers) and reported,
        instead of stopping the detector: a broken setting means more noise, never silence.

        Each variable is first parsed on its own with `from_env` itself, so what counts as
        valid is defined in one place; then the settings are built without the bad ones."""
        problems = []
        for name in _variables_read(cls):
            if not env.get(name):
                continue
            try:
                cls.from_env({name: env[name]})
            except _PARSE_ERRORS as error:
                problems.append(SettingProblem(name, _reason(error)))
        bad = {p.variable for p in problems}
        return cls.from_env({k: v for k, v in env.items() if k not in bad}), problems

    def is_automation(self, principal: Principal) -> bool:
        return _principal_matches(AllowRule(principals=self.automation_principals), principal)

    def is_known_output_bucket(self, bucket: str) -> bool:
        return any(fnmatch.fnmatchcase(bucket, pattern) for pattern in self.known_output_buckets)

    def suppression_for(self, detection_id: str) -> timedelta:
        return self.suppression_overrides.get(detection_id, self.suppression_window)


class _RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers which variables were asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getitem__(self, name: str) -> str:
        self.asked.append(name)
        raise KeyError(name)

    def get(self, name: str, default: object = None) -> str | None:  # type: ignore[override]
        self.asked.append(name)
        return default if isinstance(default, str) else None

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _variables_read(cls: type[Settings]) -> list[str]:
    """The environment variables `from_env` reads (all of them: an empty environment makes
    every one fall back to its default, so none raises before the others are read)."""
    env = _RecordingEnv()
    cls.from_env(env)
    return list(dict.fromkeys(env.asked))


def _reason(error: Exception) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:200]


def _patterns(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = json.loads(env.get(name) or "[]")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a JSON list of strings")
    return tuple(value)


def _json_object(env: Mapping[str, str], name: str) -> dict[str, object]:
    value = json.loads(env.get(name) or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    return value


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    value = float(text)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {text!r}")
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = (env.get(name) or "false").strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"{name} must be true or false, got {text!r}")
    return text in _TRUE
