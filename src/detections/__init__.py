"""The detection registry: every detection the pipeline runs, in a fixed order."""

from detections.association_runs_code import AssociationRunsCodeDetection
from detections.automation_runs_code import AutomationRunsCodeDetection
from detections.base import Detection, DetectionMetadata, Verdict
from detections.created_document_executed import CreatedDocumentExecutedDetection
from detections.distributed_command import DistributedCommandDetection
from detections.document_shared import DocumentSharedDetection
from detections.interactive_session_command import InteractiveSessionCommandDetection
from detections.maintenance_window_task import MaintenanceWindowTaskRunsCodeDetection
from detections.malicious_document_content import MaliciousDocumentContentDetection
from detections.public_sharing_enabled import PublicSharingBlockDisabledDetection
from detections.rare_document_creator import RareCommandDocumentCreatorDetection
from detections.send_command import SendCommandDetection
from detections.session_logging_disabled import SessionLoggingDisabledDetection
from detections.session_tunnel import SessionTunnelDetection


def all_detections() -> tuple[Detection, ...]:
    """Order matters: a detection sees the verdicts of those before it on the same event."""
    return (
        SendCommandDetection(),
        RareCommandDocumentCreatorDetection(),
        DistributedCommandDetection(),
        MaliciousDocumentContentDetection(),
        CreatedDocumentExecutedDetection(),
        # Issue 12: every other way SSM runs a caller's code.
        SessionLoggingDisabledDetection(),
        DocumentSharedDetection(),
        PublicSharingBlockDisabledDetection(),
        AssociationRunsCodeDetection(),
        AutomationRunsCodeDetection(),
        MaintenanceWindowTaskRunsCodeDetection(),
        # Issue 13: sessions, secrets, activations.
        SessionTunnelDetection(),
        InteractiveSessionCommandDetection(),
    )


__all__ = ["Detection", "DetectionMetadata", "Verdict", "all_detections"]
