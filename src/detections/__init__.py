"""The detection registry: every detection the pipeline runs, in a fixed order."""

from detections.base import Detection, DetectionMetadata, Verdict
from detections.created_document_executed import CreatedDocumentExecutedDetection
from detections.distributed_command import DistributedCommandDetection
from detections.interactive_session_command import InteractiveSessionCommandDetection
from detections.malicious_document_content import MaliciousDocumentContentDetection
from detections.rare_document_creator import RareCommandDocumentCreatorDetection
from detections.send_command import SendCommandDetection
from detections.session_tunnel import SessionTunnelDetection


def all_detections() -> tuple[Detection, ...]:
    """Order matters: a detection sees the verdicts of those before it on the same event."""
    return (
        SendCommandDetection(),
        RareCommandDocumentCreatorDetection(),
        DistributedCommandDetection(),
        MaliciousDocumentContentDetection(),
        CreatedDocumentExecutedDetection(),
        # Issue 13: sessions, secrets, activations.
        SessionTunnelDetection(),
        InteractiveSessionCommandDetection(),
    )


__all__ = ["Detection", "DetectionMetadata", "Verdict", "all_detections"]
