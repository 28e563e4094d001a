"""Request bodies (API fields in camelCase, as Better Auth and the NNO docs spell them)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from nno.iam.security import PERMISSION_RE
from nno.kernel.emails import Email
from nno.kernel.inputs import InputModel


def check_permission(value: str) -> str:
    if len(value) > 200 or not PERMISSION_RE.fullmatch(value):
        raise ValueError("permission keys look like '{featureId}:{action}', e.g. 'billing:read'")
    return value


_WILDCARD_RE = re.compile(r"^[a-z][a-z0-9-]*:\*$")


def check_role_permission(value: str) -> str:
    """Role mappings may also hold wildcards: `*` (everything) or `{featureId}:*`."""
    if value == "*" or _WILDCARD_RE.fullmatch(value):
        return value
    return check_permission(value)


RolePermissionKey = Annotated[str, AfterValidator(check_role_permission)]
PermissionKey = Annotated[str, AfterValidator(check_permission)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9-]+$")]
OrgName = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
OrgType = Literal["nno-operator", "tenant"]
OrgRole = Literal["owner", "admin", "member"]
PlatformRole = Literal["platform-admin", "user"]


class Body(InputModel):
    model_config = ConfigDict(extra="ignore", str_max_length=4096)


class SignUpBody(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    email: Email
    password: Annotated[str, StringConstraints(max_length=1024)]
    image: Annotated[str, StringConstraints(max_length=2048)] | None = None
    callbackURL: str | None = None
    rememberMe: bool = True


class SignInBody(Body):
    email: Email
    password: Annotated[str, StringConstraints(max_length=1024)]
    rememberMe: bool = True
    callbackURL: str | None = None


class MagicLinkBody(Body):
    email: Email
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    callbackURL: Annotated[str, StringConstraints(max_length=2048)] | None = None


class ProfileUpdate(Body):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] | None = None
    image: Annotated[str, StringConstraints(max_length=2048)] | None = None


class UpdateUserBody(Body):
    """Better Auth's `update-user`: the profile fields; `email` is named only to be refused."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] | None = None
    image: Annotated[str, StringConstraints(max_length=2048)] | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None


class RevokeSessionBody(Body):
    # A session token, or the handle `list-sessions` gives for a session (only digests are stored).
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class CheckSlugBody(Body):
    slug: Slug


class ChangePasswordBody(Body):
    currentPassword: Annotated[str, StringConstraints(max_length=1024)]
    newPassword: Annotated[str, StringConstraints(max_length=1024)]
    revokeOtherSessions: bool = False


class RequestPasswordResetBody(Body):
    email: Email
    # Where the mailed link finally leads (a page asking for the new password), as Better Auth's
    # `redirectTo`: a local path or this installation's own origin; any other is ignored.
    redirectTo: Annotated[str, StringConstraints(max_length=2048)] | None = None


class ResetPasswordBody(Body):
    newPassword: Annotated[str, StringConstraints(max_length=1024)]
    # Better Auth also takes the token from the query string when the body has none.
    token: Annotated[str, StringConstraints(max_length=512)] | None = None


class ActivePlatformBody(Body):
    platformId: Id


class PlatformMemberBody(Body):
    platformId: Id
    userId: Id
    role: PlatformRole


class OrgCreateBody(Body):
    name: OrgName
    slug: Slug
    logo: Annotated[str, StringConstraints(max_length=2048)] | None = None
    metadata: dict[str, object] | None = None
    orgType: OrgType = "tenant"
    keepCurrentActiveOrganization: bool = False


class OrgUpdateData(Body):
    model_config = ConfigDict(extra="forbid")
    name: OrgName | None = None
    slug: Slug | None = None
    logo: Annotated[str, StringConstraints(max_length=2048)] | None = None
    metadata: dict[str, object] | None = None


class OrgUpdateBody(Body):
    organizationId: Id | None = None
    data: OrgUpdateData


class OrgDeleteBody(Body):
    organizationId: Id


class NnoOrgCreateBody(Body):
    name: OrgName
    slug: Slug
    ownerId: Id
    orgType: OrgType = "tenant"


class SetActiveOrgBody(Body):
    organizationId: Id | None = None
    organizationSlug: Slug | None = None


class AddMemberBody(Body):
    userId: Id
    role: OrgRole
    organizationId: Id | None = None


class RemoveMemberBody(Body):
    memberIdOrEmail: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    organizationId: Id | None = None


class UpdateMemberRoleBody(Body):
    memberId: Id
    role: OrgRole
    organizationId: Id | None = None


class InviteBody(Body):
    email: Email
    role: OrgRole
    organizationId: Id | None = None
    resend: bool = False


class InvitationIdBody(Body):
    invitationId: Id


class LeaveOrgBody(Body):
    organizationId: Id


class RoleUpsertBody(Body):
    orgId: Id
    role: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    permissions: Annotated[list[RolePermissionKey], Field(max_length=500)]


class GrantCreateBody(Body):
    userId: Id
    orgId: Id
    permission: PermissionKey
    granted: bool
    grantedBy: Id
    expiresAt: Annotated[int, Field(gt=0)] | None = None


class PermissionCheckBody(Body):
    userId: Id | None = None
    orgId: Id
    permission: PermissionKey


class ApiKeyCreateBody(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    platformId: Id | None = None
    # Scopes (nno.kernel.scopes): `{area}:{action}`, `{area}:*` or `*`; none = the maker's full rights.
    permissions: Annotated[list[RolePermissionKey], Field(max_length=200)] = Field(default_factory=list)
    expiresAt: Annotated[int, Field(gt=0)] | None = None
    expiresIn: Annotated[int, Field(gt=0, le=10 * 365 * 24 * 3600)] | None = None  # seconds


class ApiKeyValidateBody(Body):
    key: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class ValidateSessionBody(Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class ServiceTokenBody(Body):
    audience: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "nno"
    subject: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "gateway"
    ttlSeconds: Annotated[int, Field(ge=10, le=3600)] = 300


class ServiceTokenVerifyBody(Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    audience: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class BootstrapBody(Body):
    email: Email
    password: Annotated[str, StringConstraints(max_length=1024)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = "NNO Operator"
    organizationName: OrgName = "NNO Operators"
    organizationSlug: Slug = "nno-operators"


class OperatorGrantBody(Body):
    """The account to make an operator: by id or by email, exactly one."""
    userId: Id | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def _one_reference(self) -> OperatorGrantBody:
        if (self.userId is None) == (self.email is None):
            raise ValueError("give exactly one of userId and email")
        return self


class UserCodeBody(Body):
    userCode: Annotated[str, StringConstraints(min_length=1, max_length=32)]


class SetPlatformRoleBody(Body):
    role: PlatformRole


class AdminInviteBody(Body):
    email: Email
    # How long the grant waits for that address to sign in (default 30 days, at most a year).
    ttlSeconds: Annotated[int, Field(ge=60, le=365 * 24 * 3600)] = 30 * 24 * 3600


class FeaturePermissionItem(Body):
    key: Annotated[str, AfterValidator(check_permission)]
    label: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    required: bool = False


class FeaturePermissionsBody(Body):
    """The whole set of permission keys one feature declares (replaces what was registered)."""

    permissions: Annotated[list[FeaturePermissionItem], Field(max_length=200)]


class PlatformInviteBody(Body):
    platformId: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{1,32}$")]
    email: Email
    role: PlatformRole


class PlatformInviteTokenBody(Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
