"""The detection registry: every detection the pipeline runs, in a fixed order."""

from detections.base import Detection, DetectionMetadata, Verdict
from detections.distributed_command import DistributedCommandDetection
from detections.rare_document_creator import RareCommandDocumentCreatorDetection
from detections.send_command import SendCommandDetection


def all_detections() -> tuple[Detection, ...]:
    return (
        SendCommandDetection(),
        RareCommandDocumentCreatorDetection(),
        DistributedCommandDetection(),
    )


__all__ = ["Detection", "DetectionMetadata", "Verdict", "all_detections"]
