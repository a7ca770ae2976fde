"""Calls that change a document or who may use it: a new version, the default version, sharing,
and the account-wide switch that blocks public sharing.

Field names follow CloudTrail (`requestParameters` / `responseElements`, camelCase).
"""

from __future__ import annotations

from pydantic import Field

from ssm_detect.models.bounds import FreeFormJson
from ssm_detect.models.tolerant import Name, Names, Text, TolerantCall

PUBLIC = "all"
"""`accountIdsToAdd: ["All"]` shares a document with every AWS account."""
PUBLIC_SHARING_SETTING = "/ssm/documents/console/public-sharing-permission"


class UpdateDocumentRequest(TolerantCall):
    name: Name | None = None
    content: FreeFormJson = None
    document_version: Text | None = Field(default=None, alias="documentVersion")
    """The version the new one is based on (`$LATEST` or a number)."""
    document_format: Text | None = Field(default=None, alias="documentFormat")
    target_type: Text | None = Field(default=None, alias="targetType")
    version_name: Text | None = Field(default=None, alias="versionName")


class UpdatedDocumentDescription(TolerantCall):
    name: Name | None = None
    document_type: Text | None = Field(default=None, alias="documentType")
    document_version: Text | None = Field(default=None, alias="documentVersion")
    latest_version: Text | None = Field(default=None, alias="latestVersion")
    default_version: Text | None = Field(default=None, alias="defaultVersion")
    owner: Text | None = None


class UpdateDocumentResponse(TolerantCall):
    document_description: UpdatedDocumentDescription | None = Field(
        default=None, alias="documentDescription"
    )


class UpdateDocumentDefaultVersionRequest(TolerantCall):
    name: Name | None = None
    document_version: Text | None = Field(default=None, alias="documentVersion")


class DefaultVersionDescription(TolerantCall):
    name: Name | None = None
    default_version: Text | None = Field(default=None, alias="defaultVersion")
    default_version_name: Text | None = Field(default=None, alias="defaultVersionName")


class UpdateDocumentDefaultVersionResponse(TolerantCall):
    description: DefaultVersionDescription | None = None


class ModifyDocumentPermissionRequest(TolerantCall):
    name: Name | None = None
    permission_type: Text | None = Field(default=None, alias="permissionType")
    account_ids_to_add: Names = Field(default=(), alias="accountIdsToAdd")
    account_ids_to_remove: Names = Field(default=(), alias="accountIdsToRemove")
    shared_document_version: Text | None = Field(default=None, alias="sharedDocumentVersion")

    @property
    def made_public(self) -> bool:
        return any(account.strip().lower() == PUBLIC for account in self.account_ids_to_add)

    @property
    def accounts_added(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.account_ids_to_add if a.strip().lower() != PUBLIC)


class UpdateServiceSettingRequest(TolerantCall):
    setting_id: Name | None = Field(default=None, alias="settingId")
    setting_value: Text | None = Field(default=None, alias="settingValue")

    @property
    def allows_public_sharing(self) -> bool:
        """The block on public sharing is lifted (`Enable` = sharing allowed)."""
        setting = (self.setting_id or "").rstrip("/")
        value = (self.setting_value or "").strip().lower()
        return setting.endswith(PUBLIC_SHARING_SETTING) and value == "enable"
