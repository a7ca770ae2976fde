"""What keeps the Lambda's cold start short, checked as behaviour (the timings are `make bench`'s).

- The call models are built when a record needs them (`defer_build`), not at import: a
  SendCommand builds the SendCommand models and never the Automation or association ones.
- Every model still builds: `defer_build` would otherwise hide a broken schema until the first
  record of that call reached production.
- The start-up objects are frozen out of the cyclic collector, and the collector runs again
  afterwards (handler/startup.py).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import detections
import ssm_detect
from handler.startup import collector_paused

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def _all_models() -> list[type[BaseModel]]:
    for package in (ssm_detect, detections):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    found: list[type[BaseModel]] = []
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.split(".")[0] in ("ssm_detect", "detections"):
            found.append(model)
    return found


def test_every_model_of_src_builds() -> None:
    models = _all_models()
    assert len(models) > 40  # the walk really found the call models
    for model in models:
        model.model_rebuild(force=True, raise_errors=True)
        assert model.__pydantic_complete__, model


def test_every_record_model_defers_its_schema() -> None:
    """A model added later inherits it from its base; a new base must say it too."""
    record_modules = ("ssm_detect.models.", "ssm_detect.findings")
    for model in _all_models():
        if model.__module__.startswith(record_modules):
            assert model.model_config.get("defer_build") is True, model


_CHILD = """
import gc, json, sys
import handler.app
from ssm_detect.ingest import to_event
from ssm_detect.models import scheduled_calls, session_calls, ssm_calls
from ssm_detect.principal import PrincipalKeying

after_import = {
    "frozen": gc.get_freeze_count(),
    "enabled": gc.isenabled(),
    "send_command_built": ssm_calls.SendCommandRequest.__pydantic_complete__,
}
event = to_event(json.load(open(sys.argv[1]))["detail"], PrincipalKeying.ROLE)
print(json.dumps(after_import | {
    "judged": type(event).__name__,
    "send_command_built_after": ssm_calls.SendCommandRequest.__pydantic_complete__,
    "association_built_after": scheduled_calls.Association.__pydantic_complete__,
    "start_session_built_after": session_calls.StartSessionRequest.__pydantic_complete__,
}))
"""


def test_a_fresh_handler_builds_only_the_models_its_records_need() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "ssm-detect"}
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _CHILD, str(EVENTS / "send_command_success.json")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = json.loads(out.splitlines()[-1])
    assert seen == {
        "frozen": seen["frozen"],
        "enabled": True,
        "send_command_built": False,
        "judged": "SsmEvent",
        "send_command_built_after": True,
        "association_built_after": False,
        "start_session_built_after": False,
    }
    assert seen["frozen"] > 10_000  # the import's objects, out of the collector's way


@pytest.fixture
def _restore_collector() -> object:
    enabled = gc.isenabled()
    yield None
    gc.unfreeze()
    if enabled:
        gc.enable()


@pytest.mark.usefixtures("_restore_collector")
def test_the_collector_pause_restores_its_state_even_on_error() -> None:
    gc.enable()
    seen = []

    def fail() -> None:
        with collector_paused():
            seen.append(gc.isenabled())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()  # paused by someone else: left paused
