"""Provider `github` against GitHub's documented HTTP shapes (a mocked transport): the App's
installation token (cached 50 minutes), a repository generated from the template, one commit per
change through the Git Data API (blobs, tree, commit, non-forced ref update), a moved branch
detected, and build status from the commit's deployment."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nno.kernel.kv import MemoryKV
from nno.repos import files as F
from nno.repos.config import RepoSettings
from nno.repos.github import GitHubRepoProvider
from nno.repos.gitstore import StaleHead

PID = "abcdefghij"
REPO = f"/repos/acme-org/nno-platform-{PID}"


def _sha(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class FakeGitHub:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.tokens = 0
        self.exists = False
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, str]] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.head: str | None = None
        self.deployments: list[dict[str, Any]] = []
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self.archived = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.calls.append((method, path))
        body = json.loads(request.content) if request.content else None
        auth = request.headers.get("authorization", "")
        if path.endswith("/access_tokens"):
            assert auth.startswith("Bearer ")  # the App's JWT
            self.tokens += 1
            return httpx.Response(201, json={"token": f"ghs_{self.tokens}", "expires_at": "2099-01-01T00:00:00Z"})
        assert auth.lower().startswith(("token ghs_", "bearer ghs_")), auth
        if path == "/repos/neutrino-io/nno-stack-starter/generate":
            assert body == {"owner": "acme-org", "name": f"nno-platform-{PID}", "private": True,
                            "description": f"NNO platform {PID}"}
            self.exists = True
            return httpx.Response(201, json={"full_name": f"acme-org/nno-platform-{PID}"})
        if not self.exists:
            return httpx.Response(404, json={"message": "Not Found"})
        if path == REPO:
            if method == "PATCH":
                assert body == {"archived": True}
                self.archived = True
            return httpx.Response(200, json={"full_name": f"acme-org/nno-platform-{PID}", "default_branch": "main",
                                             "archived": self.archived})
        if path == f"{REPO}/git/ref/heads/main":
            if self.head is None:
                return httpx.Response(409, json={"message": "Git Repository is empty."})
            return httpx.Response(200, json={"ref": "refs/heads/main", "object": {"type": "commit", "sha": self.head}})
        if path == f"{REPO}/git/blobs" and method == "POST":
            assert body["encoding"] == "base64"
            data = base64.b64decode(body["content"])
            sha = _sha("blob", data.decode())
            self.blobs[sha] = data
            return httpx.Response(201, json={"sha": sha, "url": "u"})
        if path.startswith(f"{REPO}/git/blobs/"):
            data = self.blobs[path.rsplit("/", 1)[1]]
            return httpx.Response(200, json={"content": base64.b64encode(data).decode(), "encoding": "base64"})
        if path == f"{REPO}/git/trees" and method == "POST":
            entries = dict(self.trees[self.commits_tree(body["base_tree"])]) if body.get("base_tree") else {}
            for e in body["tree"]:
                if e["sha"] is None:
                    entries.pop(e["path"], None)
                else:
                    entries[e["path"]] = e["sha"]
            sha = _sha("tree", entries)
            self.trees[sha] = entries
            return httpx.Response(201, json={"sha": sha})
        if path.startswith(f"{REPO}/git/trees/"):
            entries = self.trees[path.rsplit("/", 1)[1]]
            return httpx.Response(200, json={"sha": "t", "truncated": False, "tree": [
                {"path": p, "mode": "100644", "type": "blob", "sha": s} for p, s in entries.items()]})
        if path == f"{REPO}/git/commits" and method == "POST":
            sha = _sha("commit", body)
            self.commits[sha] = body
            return httpx.Response(201, json={"sha": sha, "tree": {"sha": body["tree"]}})
        if path.startswith(f"{REPO}/git/commits/"):
            c = self.commits[path.rsplit("/", 1)[1]]
            return httpx.Response(200, json={"sha": path.rsplit("/", 1)[1], "tree": {"sha": c["tree"]}})
        if path == f"{REPO}/git/refs" and method == "POST":
            self.head = body["sha"]
            return httpx.Response(201, json={"ref": body["ref"], "object": {"sha": body["sha"]}})
        if path == f"{REPO}/git/refs/heads/main" and method == "PATCH":
            assert body["force"] is False
            if self.head not in self.commits[body["sha"]]["parents"]:
                return httpx.Response(422, json={"message": "Update is not a fast forward"})
            self.head = body["sha"]
            return httpx.Response(200, json={"ref": "refs/heads/main", "object": {"sha": body["sha"]}})
        if path == f"{REPO}/deployments":
            sha = request.url.params["sha"]
            return httpx.Response(200, json=[d for d in self.deployments if d["sha"] == sha])
        if path.startswith(f"{REPO}/deployments/") and path.endswith("/statuses"):
            return httpx.Response(200, json=self.statuses.get(int(path.split("/")[-2]), []))
        raise AssertionError(f"unexpected {method} {path}")

    def commits_tree(self, tree_sha: str) -> str:
        return tree_sha


def _key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
def provider(fake: FakeGitHub) -> GitHubRepoProvider:
    settings = RepoSettings(NNO_GITHUB_APP_ID="12345", NNO_GITHUB_APP_PRIVATE_KEY=_key(),
                            NNO_GITHUB_INSTALLATION_ID=777, NNO_GITHUB_ORG="acme-org")
    return GitHubRepoProvider(settings, MemoryKV(), transport=httpx.MockTransport(fake))


async def test_repository_from_template_and_one_commit_per_change(provider: GitHubRepoProvider,
                                                                  fake: FakeGitHub) -> None:
    files = F.initial_files(PID, "Acme", "starter", "nno.localhost")
    name, created, first = await provider.ensure_repo(PID, files)
    assert (name, created) == (f"acme-org/nno-platform-{PID}", True) and first == fake.head
    assert await provider.read(PID) == files
    again = await provider.ensure_repo(PID, files)
    assert again == (name, False, None)  # idempotent: no second commit

    head = await provider.head(PID)
    changes = F.with_feature(files, PID, F.Feature("analytics", "1.0.0"))
    fake.calls.clear()
    sha = await provider.commit(PID, changes, "Activate analytics", head)
    writes = [c for c in fake.calls if c[0] in ("POST", "PATCH")]
    assert [p.rsplit("/", 1)[-1] if m == "POST" else "ref" for m, p in writes] == [
        "blobs", "blobs", "trees", "commits", "ref"]  # two files, ONE tree, ONE commit, one ref move
    assert fake.head == sha and fake.commits[sha]["parents"] == [head]
    after = await provider.read(PID)
    assert [f.id for f in F.parse_features(after)] == ["analytics"]
    assert after[F.ENV] == files[F.ENV]  # untouched files keep the base tree's blobs
    assert await provider.commit(PID, changes, "again", sha) is None  # nothing changed: no commit

    # A writer on a stale head is refused by the non-forced ref update.
    with pytest.raises(StaleHead):
        await provider.commit(PID, F.with_feature(files, PID, F.Feature("crm", "2.0.0")), "late", head)
    assert fake.head == sha
    assert fake.tokens == 1  # the installation token was cached across every call


async def test_build_status_follows_the_commits_deployment(provider: GitHubRepoProvider, fake: FakeGitHub) -> None:
    await provider.ensure_repo(PID, F.initial_files(PID, "Acme", "starter", "nno.localhost"))
    sha = str(fake.head)
    waiting = await provider.build(PID, "prod", sha)
    assert not waiting.done
    fake.deployments.append({"id": 5, "sha": sha, "environment": f"{PID}-prod-portal"})
    fake.statuses[5] = [{"state": "in_progress"}]
    assert not (await provider.build(PID, "prod", sha)).done
    fake.statuses[5] = [{"state": "failure", "log_url": "https://github.com/x/actions/runs/1"}]
    failed = await provider.build(PID, "prod", sha)
    assert failed.done and not failed.ok and "actions/runs/1" in "\n".join(failed.log)
    fake.statuses[5] = [{"state": "success"}]
    assert (await provider.build(PID, "prod", sha)).ok


async def test_a_stacks_changes_are_one_commit(provider: GitHubRepoProvider, fake: FakeGitHub) -> None:
    files = F.initial_files(PID, "Acme", "starter", "nno.localhost")
    await provider.ensure_repo(PID, files)
    head = await provider.head(PID)
    changes = F.with_changes(files, PID, [F.Feature("crm", "1.2.0"), F.Feature("billing", "1.0.0")], ["analytics"])
    fake.calls.clear()
    sha = await provider.commit(PID, changes, "Apply 3 feature changes", head)
    assert [c for c in fake.calls if c[0] in ("POST", "PATCH") and "/git/commits" in c[1]] == [
        ("POST", f"{REPO}/git/commits")]
    assert fake.commits[str(sha)]["parents"] == [head]
    assert [f.id for f in F.parse_features(await provider.read(PID))] == ["billing", "crm"]


async def test_deprovisioning_archives_the_repository(provider: GitHubRepoProvider, fake: FakeGitHub) -> None:
    assert await provider.remove(PID) == "archived"  # none yet: nothing to do
    assert not fake.archived
    await provider.ensure_repo(PID, F.initial_files(PID, "Acme", "starter", "nno.localhost"))
    assert await provider.remove(PID) == "archived"
    assert fake.archived and ("PATCH", REPO) in fake.calls
    assert await provider.pushed() == []  # GitHub builds a push itself (deploy.yml)


def test_incomplete_configuration_is_refused() -> None:
    with pytest.raises(Exception, match="NNO_GITHUB_APP_ID"):
        GitHubRepoProvider(RepoSettings(NNO_GITHUB_ORG="x"), MemoryKV())
