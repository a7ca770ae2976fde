"""The detection registry: every detection the pipeline runs, in a fixed order."""

from detections.association_runs_code import AssociationRunsCodeDetection
from detections.automation_runs_code import AutomationRunsCodeDetection
from detections.base import Detection, DetectionMetadata, Verdict
from detections.created_document_executed import CreatedDocumentExecutedDetection
from detections.distributed_command import DistributedCommandDetection
from detections.document_shared import DocumentSharedDetection
from detections.document_version_tampering import DocumentVersionByNewPrincipalDetection
from detections.hybrid_activation import HybridActivationDetection
from detections.interactive_session_command import InteractiveSessionCommandDetection
from detections.maintenance_window_task import MaintenanceWindowTaskRunsCodeDetection
from detections.malicious_document_content import MaliciousDocumentContentDetection
from detections.public_sharing_enabled import PublicSharingBlockDisabledDetection
from detections.rare_automation_session_creator import (
    RareAutomationOrSessionDocumentCreatorDetection,
)
from detections.rare_document_creator import RareCommandDocumentCreatorDetection
from detections.securestring_harvesting import SecureStringHarvestingDetection
from detections.send_command import SendCommandDetection
from detections.send_command_probing import SendCommandProbingDetection
from detections.session_after_logging_tampering import SessionAfterLoggingTamperingDetection
from detections.session_fanout import SessionFanoutDetection
from detections.session_logging_disabled import SessionLoggingDisabledDetection
from detections.session_tunnel import SessionTunnelDetection


def all_detections() -> tuple[Detection, ...]:
    """Order matters: a detection sees the verdicts of those before it on the same event."""
    return (
        SendCommandDetection(),
        RareCommandDocumentCreatorDetection(),
        # Issue 12 points 1 and 6: beside the seed, before the content and chain detections
        # that read their verdicts (`prior`).
        RareAutomationOrSessionDocumentCreatorDetection(),
        DocumentVersionByNewPrincipalDetection(),
        DistributedCommandDetection(),
        MaliciousDocumentContentDetection(),
        CreatedDocumentExecutedDetection(),
        # Issue 12 point 7: failed SendCommands, then a success.
        SendCommandProbingDetection(),
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
        SessionFanoutDetection(),
        SecureStringHarvestingDetection(),
        HybridActivationDetection(),
        # After every detection whose verdict on a preferences change it chains on.
        SessionAfterLoggingTamperingDetection(),
    )


__all__ = ["Detection", "DetectionMetadata", "Verdict", "all_detections"]
