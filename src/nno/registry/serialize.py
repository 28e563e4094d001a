"""Rows to the API's camelCase objects (the shapes in schemas.py)."""

from __future__ import annotations

from typing import Any

from nno.registry.models import (
    AuditLog,
    BuildState,
    DnsRecord,
    Entity,
    FeatureActivation,
    LifecycleEvent,
    OnboardingSession,
    Platform,
    Resource,
    Secret,
    Stack,
)


def platform(p: Platform) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "slug": p.slug,
        "status": p.status,
        "tier": p.tier,
        "class": p.platform_class,
        "cfAccountId": p.cf_account_id,
        "repoName": p.repo_name,
        "stripeCustomerId": p.stripe_customer_id,
        "ownerUserId": p.owner_user_id,
        "cancelledAt": p.cancelled_at,
        "cancellationReason": p.cancellation_reason,
        "suspendedAt": p.suspended_at,
        "suspensionReason": p.suspension_reason,
        "trialEndsAt": p.trial_ends_at,
        "icon": p.icon,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "deletedAt": p.deleted_at,
    }


def entity(e: Entity) -> dict[str, Any]:
    return {
        "id": e.id,
        "platformId": e.platform_id,
        "parentId": e.parent_id,
        "type": e.type,
        "name": e.name,
        "slug": e.slug,
        "status": e.status,
        "orgId": e.org_id,
        "createdAt": e.created_at,
        "updatedAt": e.updated_at,
        "deletedAt": e.deleted_at,
    }


def stack(st: Stack) -> dict[str, Any]:
    return {
        "id": st.id,
        "tenantId": st.tenant_id,
        "platformId": st.platform_id,
        "name": st.name,
        "isDefault": st.is_default,
        "templateId": st.template_id,
        "templateVersion": st.template_version,
        "repoName": st.repo_name,
        "status": st.status,
        "createdAt": st.created_at,
        "updatedAt": st.updated_at,
    }


def resource(r: Resource) -> dict[str, Any]:
    return {
        "id": r.id,
        "platformId": r.platform_id,
        "stackId": r.stack_id,
        "entityId": r.entity_id,
        "type": r.type,
        "name": r.name,
        "cfResourceId": r.cf_resource_id,
        "environment": r.environment,
        "status": r.status,
        "featureId": r.feature_id,
        "provisionJobId": r.provision_job_id,
        "metadata": r.meta or {},
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
        "deletedAt": r.deleted_at,
    }


def secret(x: Secret) -> dict[str, Any]:
    return {
        "id": x.id,
        "resourceId": x.resource_id,
        "name": x.name,
        "status": x.status,
        "fingerprint": x.fingerprint,
        "setBy": x.set_by,
        "lastSetAt": x.last_set_at,
        "lastRotatedAt": x.last_rotated_at,
        "createdAt": x.created_at,
        "updatedAt": x.updated_at,
    }


def dns_record(d: DnsRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "platformId": d.platform_id,
        "stackId": d.stack_id,
        "resourceId": d.resource_id,
        "hostname": d.hostname,
        "type": d.type,
        "environment": d.environment,
        "target": d.target,
        "cfCustomHostnameId": d.cf_custom_hostname_id,
        "status": d.status,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
    }


def feature(f: FeatureActivation) -> dict[str, Any]:
    return {
        "id": f.id,
        "platformId": f.platform_id,
        "entityId": f.entity_id,
        "stackId": f.stack_id,
        "featureId": f.feature_id,
        "version": f.version,
        "environment": f.environment,
        "config": f.config or {},
        "status": f.status,
        "activatedBy": f.activated_by,
        "activatedAt": f.activated_at,
        "deactivatedAt": f.deactivated_at,
        "provisionJobId": f.provision_job_id,
        "createdAt": f.created_at,
        "updatedAt": f.updated_at,
    }


def build_state(b: BuildState) -> dict[str, Any]:
    return {
        "platformId": b.platform_id,
        "environment": b.environment,
        "repoFullName": b.repo_full_name,
        "defaultBranch": b.default_branch,
        "pagesProjectName": b.pages_project_name,
        "lastCommitSha": b.last_commit_sha,
        "lastBuildId": b.last_build_id,
        "lastBuildStatus": b.last_build_status,
        "lastBuildAt": b.last_build_at,
        "updatedAt": b.updated_at,
    }


def audit_row(a: AuditLog) -> dict[str, Any]:
    return {
        "id": a.id,
        "platformId": a.platform_id,
        "entityId": a.entity_id,
        "actorType": a.actor_type,
        "actorId": a.actor_id,
        "action": a.action,
        "targetType": a.target_type,
        "targetId": a.target_id,
        "requestId": a.request_id,
        "before": a.before,
        "after": a.after,
        "metadata": a.meta,
        "createdAt": a.created_at,
    }


def lifecycle_event(e: LifecycleEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "platformId": e.platform_id,
        "fromStatus": e.from_status,
        "toStatus": e.to_status,
        "action": e.action,
        "reason": e.reason,
        "actorType": e.actor_type,
        "actorId": e.actor_id,
        "requestId": e.request_id,
        "createdAt": e.created_at,
    }


def onboarding(o: OnboardingSession) -> dict[str, Any]:
    return {
        "id": o.id,
        "platformId": o.platform_id,
        "userId": o.user_id,
        "platformName": o.platform_name,
        "slug": o.slug,
        "tier": o.tier,
        "stackTemplateId": o.stack_template_id,
        "status": o.status,
        "steps": [dict(step) for step in o.steps],
        "provisionJobId": o.provision_job_id,
        "error": o.error,
        "createdAt": o.created_at,
        "updatedAt": o.updated_at,
    }
