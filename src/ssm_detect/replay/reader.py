"""What a reader process of a parallel replay runs (`ssm-detect replay --jobs N`).

A reader takes one file and hands back what the parent needs of it. For an S3 log object (the
usual case) that is its record count and the raw JSON of the few records the prefilter keeps
(prefilter.py: SSM calls a detection reads, and anything it cannot rule out), so the reader only
inflates (isal) and splits (msgspec). It imports nothing else of the detector: no record models,
pydantic, detections, boto3 or Powertools. That matters because every reader pays its imports,
and the whole package costs about half a second of CPU per process, as much as reading 150,000
records. The parent parses the kept records (a fraction of a percent of a trail) exactly as one
process reading the file would (engine.Intake), so the result does not depend on `--jobs`.

Anything the prefilter declines (JSON lines, arrays, envelopes, damaged or odd files) is read
here by the engine's general reader, imported only then, and handed back counted and reduced to
the SSM records to order (engine.FileIntake), as before.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ssm_detect.replay.prefilter import Needed, needs_parsing
from ssm_detect.replay.sources import FilteredRecords, log_object

if TYPE_CHECKING:
    from ssm_detect.replay.engine import FileIntake


def read_part(
    path: Path,
    keying: str,
    event_names: frozenset[str] | None,
    window: tuple[datetime, datetime] | None,
) -> FilteredRecords | FileIntake:
    """One file, in a reader process. `keying` is the `PrincipalKeying` value, as text: the
    enum's module imports the record models."""
    fast = log_object(path, _needed(event_names))
    if fast is not None:
        return fast
    from ssm_detect.principal import PrincipalKeying  # noqa: PLC0415 - see the module's note
    from ssm_detect.replay.engine import read_one_file  # noqa: PLC0415

    return read_one_file(path, PrincipalKeying(keying), event_names, window)


@lru_cache(maxsize=4)
def _needed(event_names: frozenset[str] | None) -> Needed:
    """The prefilter's test, built once per reader for the names it is sent with every file."""
    return needs_parsing(event_names)
