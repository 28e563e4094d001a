"""The platform owner becomes platform-admin of the platform's own auth Worker.

Part of `deploy_auth_worker` (DECISIONS 12 fixes the PROVISION_PLATFORM step list, and §12 makes an
auth-Worker redeploy a re-run of these steps). The owner is the Registry platform's `ownerUserId`;
their address comes from NNO's IAM. NNO mints a service token for the platform (`auth:{platformId}`)
and asks the Worker for an admin invite (`POST /api/nno/admin-invites`): granted at once if that
address already has a verified account there, else at its first magic-link sign-in there.

Idempotent (DECISIONS 13): the Worker is asked first whether the owner is already an admin. IAM
lists no pending invites, so the record of an earlier job's invite on this same auth D1 (its cloud
id changes when the D1 is re-created) stands for it: a live invite is not asked for twice, and an
owner provisioning made admin once, whom the platform's admins later demoted, is not re-promoted.
An expired invite is renewed. Only a step interrupted between the Worker's answer and the job's
record asks again; IAM keeps one live invite per address (the newer replaces the older).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select

from nno.kernel.clock import now_ms
from nno.provisioning import jobs as J
from nno.provisioning.errors import StepError
from nno.provisioning.iam_client import IAMClient
from nno.provisioning.models import ProvisionJob
from nno.provisioning.steps.base import StepContext

log = structlog.get_logger("nno.provisioning.owner_admin")

STEP_NAME = "deploy_auth_worker"
OUTPUT_KEY = "ownerAdmin"


def auth_d1_id(sctx: StepContext) -> str | None:
    """The cloud's id of the auth D1 this job created or found (an earlier step's output)."""
    for res in sctx.outputs.get("create_auth_d1", {}).get("resources", []):
        if res.get("type") == "d1" and res.get("providerId"):
            return str(res["providerId"])
    return None


async def _worker_json(sctx: StepContext, worker: str, method: str, path: str, token: str,
                       body: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = await sctx.provider.call_worker(worker, method, path, json=body,
                                           headers={"authorization": f"Bearer {token}"})
    data = None
    try:
        data = resp.json()
    except ValueError:
        pass
    if resp.ok and isinstance(data, dict):
        return data
    err = data.get("error", {}) if isinstance(data, dict) else {}
    code = str(err.get("code") or "ERROR") if isinstance(err, dict) else "ERROR"
    message = str(err.get("message") or "") if isinstance(err, dict) else ""
    raise StepError(f"auth Worker {worker} {method} {path} answered {resp.status} {code}: {message}",
                    code=f"AUTH_WORKER_{code}", retryable=resp.status >= 500 or resp.status == 429)


async def _earlier_seed(sctx: StepContext, email: str, d1_id: str) -> dict[str, Any] | None:
    """The newest record, by another PROVISION_PLATFORM job of this platform, of the owner seeded on this
    same auth D1 that still stands: made admin, or invited with the invite not yet expired."""
    async with sctx.ctx.db.session() as s:
        rows = (await s.execute(
            select(ProvisionJob.id, ProvisionJob.steps)
            .where(ProvisionJob.platform_id == sctx.platform_id, ProvisionJob.type == "PROVISION_PLATFORM",
                   ProvisionJob.id != sctx.job_id)
            .order_by(ProvisionJob.created_at.desc(), ProvisionJob.id.desc()))).all()
    now = now_ms()
    for job_id, steps in rows:
        for record in steps or []:
            if record.get("name") != STEP_NAME or record.get("status") not in (J.STEP_COMPLETED, J.STEP_SKIPPED):
                continue
            seed = (record.get("output") or {}).get(OUTPUT_KEY) or {}
            if seed.get("email") != email or seed.get("d1Id") != d1_id:
                continue
            expires = seed.get("expiresAt")
            if seed.get("status") == "granted" or (
                    seed.get("status") == "pending" and isinstance(expires, int) and expires > now):
                return {**seed, "seededByJob": seed.get("seededByJob") or job_id}
    return None


async def seed_owner_admin(sctx: StepContext, worker: str) -> tuple[dict[str, Any], bool]:
    """(what was done, whether anything was created) for the owner on auth Worker `worker`."""
    owner_id = (await sctx.registry.get_platform(sctx.platform_id)).get("ownerUserId")
    if not owner_id:
        return {"status": "skipped", "reason": "the platform has no owner"}, False
    iam = IAMClient(sctx.ctx)
    if not iam.available:
        log.warning("owner_admin_not_seeded", platformId=sctx.platform_id, reason="IAM is not deployed")
        return {"status": "skipped", "userId": owner_id, "reason": "IAM is not deployed"}, False
    email = await iam.user_email(str(owner_id))
    if email is None:
        log.warning("owner_admin_not_seeded", platformId=sctx.platform_id, reason="owner account gone")
        return {"status": "skipped", "userId": owner_id, "reason": "the owner's NNO account no longer exists"}, False
    d1_id = auth_d1_id(sctx)
    base: dict[str, Any] = {"userId": owner_id, "email": email, "d1Id": d1_id}
    token = await iam.platform_token(sctx.platform_id)

    admins = await _worker_json(sctx, worker, "GET", "/api/nno/platform-admins", token)
    if any(str(a.get("email", "")).lower() == email for a in admins.get("data", [])):
        return {**base, "status": "granted", "created": False}, False
    if d1_id is not None:
        earlier = await _earlier_seed(sctx, email, d1_id)
        if earlier is not None:
            return {**earlier, "created": False}, False

    answer = await _worker_json(sctx, worker, "POST", "/api/nno/admin-invites", token, {"email": email})
    status = "granted" if answer.get("status") == "granted" else "pending"
    return {**base, "status": status, "created": True, "grantId": answer.get("grantId"),
            "expiresAt": answer.get("expiresAt"), "seededByJob": sctx.job_id}, True
