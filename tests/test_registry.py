"""One parametrised check over the whole registry: metadata valid, unique, and complete."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from detections import Detection, DetectionMetadata, all_detections
from tests.builders import Runner, load_record

DETECTIONS = all_detections()
IDS = [d.metadata.id for d in DETECTIONS]
# Detections of SSM calls that run nothing (T1651 is "Cloud Administration Command"): reading
# secrets is credential access (T1555/T1552), an activation hands out a role (T1078.004).
NOT_EXECUTION = frozenset({"AWS.SSM.SecureStringHarvesting", "AWS.SSM.HybridActivation"})
TAG = re.compile(r"^attack\.(t\d{4}(\.\d{3})?|[a-z]+(-[a-z]+)*)$")


def test_registry_ids_are_unique() -> None:
    assert len(IDS) == len(set(IDS))


def test_registry_titles_are_unique() -> None:
    titles = [d.metadata.title for d in DETECTIONS]
    assert len(titles) == len(set(titles))


def test_registry_has_the_three_seed_detections() -> None:
    assert set(IDS) >= {
        "AWS.SSM.SendCommand",
        "AWS.SSM.RareCommandDocumentCreator",
        "AWS.SSM.DistributedCommand",
    }


def test_registry_returns_detections_in_a_fixed_order() -> None:
    assert [d.metadata.id for d in all_detections()] == IDS


@pytest.mark.parametrize("detection", DETECTIONS, ids=IDS)
def test_registry_metadata_is_valid(detection: Detection) -> None:
    metadata = detection.metadata

    assert DetectionMetadata.model_validate(metadata.model_dump()) == metadata


@pytest.mark.parametrize("detection", DETECTIONS, ids=IDS)
def test_registry_metadata_is_complete(detection: Detection) -> None:
    metadata = detection.metadata

    assert metadata.references
    assert all(ref.startswith("https://") for ref in metadata.references)
    assert metadata.false_positives
    assert all(fp.strip() for fp in metadata.false_positives)
    assert len(metadata.runbook.split()) >= 10
    assert metadata.seed.strip()
    assert metadata.attack


@pytest.mark.parametrize("detection", DETECTIONS, ids=IDS)
def test_registry_tags_include_t1651(detection: Detection) -> None:
    tags = detection.metadata.tags

    assert ("attack.t1651" in tags) is (detection.metadata.id not in NOT_EXECUTION)
    assert all(TAG.match(tag) for tag in tags), tags
    assert len(tags) == len(set(tags))


@pytest.mark.parametrize("detection", DETECTIONS, ids=IDS)
def test_registry_mitre_matches_attack_refs(detection: Detection) -> None:
    metadata = detection.metadata

    assert [(m.tactic, m.technique) for m in metadata.mitre] == [
        (a.tactic_id, a.technique_id) for a in metadata.attack
    ]
    executes = any(m.technique == "T1651" and m.tactic == "TA0002" for m in metadata.mitre)
    assert executes is (metadata.id not in NOT_EXECUTION)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "SSM SendCommand"},
        {"title": "x"},
        {"description": "short"},
        {"attack": ()},
        {"references": ()},
        {"false_positives": ()},
        {"runbook": ""},
        {"severity": "URGENT"},
    ],
)
def test_registry_metadata_model_rejects_incomplete_metadata(change: dict[str, object]) -> None:
    raw = DETECTIONS[0].metadata.model_dump() | change

    with pytest.raises(ValidationError):
        DetectionMetadata.model_validate(raw)


def test_registry_metadata_model_rejects_malformed_attack_ids() -> None:
    raw = DETECTIONS[0].metadata.model_dump()
    raw["attack"] = [raw["attack"][0] | {"technique_id": "1651"}]

    with pytest.raises(ValidationError):
        DetectionMetadata.model_validate(raw)


def test_registry_findings_carry_their_detection_metadata() -> None:
    runner = Runner()
    findings = runner.process(load_record("panther_send_command_three_instances.json"))
    findings += runner.process(load_record("create_document_command_new_principal.json"))
    by_id = {d.metadata.id: d.metadata for d in DETECTIONS}

    assert {f.detection_id for f in findings} >= {
        "AWS.SSM.SendCommand",
        "AWS.SSM.RareCommandDocumentCreator",
        "AWS.SSM.DistributedCommand",
    }
    for finding in findings:
        metadata = by_id[finding.detection_id]
        assert finding.title == metadata.title
        assert finding.references == metadata.references
        assert finding.runbook == metadata.runbook
        assert finding.mitre == metadata.mitre
        assert finding.id.startswith(f"ssm-detect/{metadata.id}/")
