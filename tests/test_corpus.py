"""The synthetic CloudTrail corpus (bench/corpus.py): repeatable bytes, and the options it takes.

The benchmark caches a corpus under a key holding the generator's VERSION and reuses it while
the key matches, so the bytes for a key must not change silently.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.corpus import START, VERSION, CorpusSpec, ensure_corpus, lambda_events_path

# The generator version and the sha256 of the corpus below as that version writes it. A change
# that alters the bytes must bump VERSION (so cached corpora are regenerated) and update both.
DEFAULT_DIGEST = (1, "56947862d6c2ba11cdfdb40f43761a59429d32cc1004fa37feef25fec7318252")


def digest(root: Path, spec: CorpusSpec) -> str:
    folder = root / spec.key
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*.json.gz")):
        sha.update(str(path.relative_to(folder)).encode())
        sha.update(path.read_bytes())
    sha.update(lambda_events_path(root, spec).read_bytes())
    return sha.hexdigest()


def test_corpus_default_bytes_are_pinned_to_the_generator_version(tmp_path: Path) -> None:
    spec = CorpusSpec(3_000)
    assert spec.key == f"r3000-s7-v{VERSION}"  # options left at their defaults stay out of it
    ensure_corpus(tmp_path, spec, workers=1)
    assert (VERSION, digest(tmp_path, spec)) == DEFAULT_DIGEST


def test_corpus_same_bytes_whatever_the_number_of_workers(tmp_path: Path) -> None:
    spec = CorpusSpec(6_000, seed=3, days=2, ssm_share=0.1)
    _, one = ensure_corpus(tmp_path / "one", spec, workers=1)
    _, two = ensure_corpus(tmp_path / "two", spec, workers=2)
    assert digest(tmp_path / "one", spec) == digest(tmp_path / "two", spec)
    assert {k: v for k, v in one.items() if "seconds" not in k} == {
        k: v for k, v in two.items() if "seconds" not in k
    }


def test_corpus_spreads_records_over_the_days_and_ssm_share_asked_for(tmp_path: Path) -> None:
    spec = CorpusSpec(4_000, days=3, ssm_share=0.5)
    assert spec.key == f"r4000-s7-d3-ssm0.5-v{VERSION}"
    folder, stats = ensure_corpus(tmp_path, spec, workers=1)
    records = [
        record
        for path in folder.rglob("*.json.gz")
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]
    ]
    times = sorted(datetime.fromisoformat(r["eventTime"]) for r in records)
    ssm = sum(r["eventSource"] == "ssm.amazonaws.com" for r in records)
    assert len(records) == stats["records"] == 4_000
    assert times[0] == START
    assert START + timedelta(days=2, hours=23) < times[-1] < START + timedelta(days=3)
    assert ssm == stats["ssm"]
    assert 0.45 < ssm / len(records) < 0.55
    # What the benchmark's second run sees: the manifest, not a new generation.
    assert ensure_corpus(tmp_path, spec)[1]["generated_seconds_now"] == 0.0


@pytest.mark.parametrize(
    ("records", "days", "ssm_share"), [(0, 1.0, 0.01), (10, 0.0, 0.01), (10, 1.0, 1.5)]
)
def test_corpus_spec_refuses_what_it_cannot_generate(
    records: int, days: float, ssm_share: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        CorpusSpec(records, days=days, ssm_share=ssm_share)


def test_a_scaled_corpus_is_distinct_records_later_in_time(tmp_path: Path) -> None:
    """The 10M-record benchmark corpus is derived from a generated one (`ensure_scaled_corpus`):
    every record must be a valid CloudTrail record of its own, or the replay would read
    duplicates (dropped unjudged) instead of the work a trail that size gives it."""
    from bench.corpus import ensure_scaled_corpus  # noqa: PLC0415
    from ssm_detect.principal import PrincipalKeying  # noqa: PLC0415
    from ssm_detect.replay.engine import read_inputs  # noqa: PLC0415

    base = CorpusSpec(3_000)
    folder, manifest = ensure_scaled_corpus(tmp_path, base, 3, workers=1)
    base_folder, base_manifest = ensure_corpus(tmp_path, base, workers=1)
    records = [
        record
        for path in sorted(folder.rglob("*.json.gz"))
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]
    ]
    assert len(records) == manifest["records"] == 3 * base_manifest["records"]
    assert len({r["eventID"] for r in records}) == len(records)
    days = {r["eventTime"][:10] for r in records}
    assert days == {f"{START + timedelta(days=d):%Y-%m-%d}" for d in range(3)}
    for record in records:  # each copy keeps the base's shape: a UUID, a CloudTrail time
        datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")  # noqa: DTZ007
        assert [len(part) for part in record["eventID"].split("-")] == [8, 4, 4, 4, 12]
    assert sum(count for _, count in manifest["by_file"]) == len(records)
    intake, files = read_inputs([folder], PrincipalKeying.ROLE)
    assert files == manifest["objects"]
    assert intake.summary.events_seen == len(records)
    held = list(intake.events())
    assert intake.summary.duplicates == 0
    assert len(held) == 3 * len(list(read_inputs([base_folder], PrincipalKeying.ROLE)[0].events()))
    # Reused, not regenerated, while its manifest is there.
    assert ensure_scaled_corpus(tmp_path, base, 3, workers=1)[1]["generated_seconds_now"] == 0
