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
