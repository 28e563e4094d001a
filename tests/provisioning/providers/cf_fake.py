"""A stateful stand-in for the Cloudflare API at the HTTP layer (for httpx.MockTransport): the
routes the provider uses, Cloudflare's envelope `{"success", "errors", "messages", "result"}`, its
error shapes, page-number pagination, and every request recorded for assertions."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any

import httpx

ACCOUNT, ZONE = "acc123", "zone456"


def ok(result: Any, status: int = 200, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"success": True, "errors": [], "messages": [], "result": result, **extra})


def fail(status: int, code: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"success": False, "errors": [{"code": code, "message": message}],
                                        "messages": [], "result": None})


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeCloudflare:
    d1: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> db
    r2: dict[str, dict[str, Any]] = field(default_factory=dict)
    kv: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> namespace
    scripts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {metadata, modules}
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # script -> {name: text}
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages_domains: dict[str, set[str]] = field(default_factory=dict)
    worker_domains: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> domain
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> record
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> custom hostname
    calls: list[Call] = field(default_factory=list)
    # Scripted failures: (method, path regex) -> responses returned (and consumed) before the real one.
    failures: list[tuple[str, str, httpx.Response]] = field(default_factory=list)
    # Simulate losing a race: the next create of this name finds it already there.
    race: set[str] = field(default_factory=set)

    def fail_next(self, method: str, path_regex: str, response: httpx.Response) -> None:
        self.failures.append((method, path_regex, response))

    def writes(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.calls if c.method != "GET"]

    @staticmethod
    def _paged(items: list[Any], query: dict[str, str]) -> httpx.Response:
        page, per_page = int(query.get("page", "1")), int(query.get("per_page", "20"))
        chunk = items[(page - 1) * per_page: page * per_page]
        return ok(chunk, result_info={"page": page, "per_page": per_page, "count": len(chunk),
                                      "total_count": len(items)})

    def _body(self, request: httpx.Request) -> Any:
        ctype = request.headers.get("content-type", "")
        raw = request.content
        if ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=email_policy).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            parts: dict[str, Any] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True)
                if name == "metadata":
                    parts["metadata"] = json.loads(payload)
                else:
                    parts.setdefault("files", {})[filename or name] = payload
            return parts
        return json.loads(raw) if raw else None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/client/v4")
        query = dict(request.url.params)
        body = self._body(request)
        self.calls.append(Call(request.method, path, query, body))
        for i, (method, regex, response) in enumerate(self.failures):
            if method == request.method and re.fullmatch(regex, path):
                del self.failures[i]
                return response
        return self.route(request.method, path, query, body)

    def route(self, method: str, path: str, q: dict[str, str], body: Any) -> httpx.Response:
        a, z = f"/accounts/{ACCOUNT}", f"/zones/{ZONE}"
        seg = path.split("/")
        # D1
        if path == f"{a}/d1/database":
            if method == "GET":
                return self._paged([d for n, d in self.d1.items() if q.get("name", "") in n], q)
            name = body["name"]
            if name in self.d1 or name in self.race:
                self._race_create_d1(name)
                return fail(400, 7502, "A database with that name already exists")
            self.d1[name] = {"uuid": str(uuid.uuid4()), "name": name, "created_at": "2026-01-01T00:00:00Z"}
            return ok(self.d1[name])
        if path.startswith(f"{a}/d1/database/") and method == "DELETE":
            for name, db in list(self.d1.items()):
                if db["uuid"] == seg[-1]:
                    del self.d1[name]
                    return ok(None)
            return fail(404, 7404, "The database could not be found")
        # R2
        if path == f"{a}/r2/buckets":
            if method == "GET":
                names = sorted(n for n in self.r2 if q.get("name_contains", "") in n)
                return ok({"buckets": [self.r2[n] for n in names]})
            name = body["name"]
            if name in self.r2:
                return fail(409, 10004, "The bucket you tried to create already exists, and you own it.")
            self.r2[name] = {"name": name, "creation_date": "2026-01-01T00:00:00Z"}
            return ok(self.r2[name])
        if path.startswith(f"{a}/r2/buckets/"):
            name = seg[-1]
            if name not in self.r2:
                return fail(404, 10006, "The specified bucket does not exist.")
            if method == "DELETE":
                del self.r2[name]
                return ok(None)
            return ok(self.r2[name])
        # KV
        if path == f"{a}/storage/kv/namespaces":
            if method == "GET":
                return self._paged(list(self.kv.values()), q)
            if any(ns["title"] == body["title"] for ns in self.kv.values()):
                return fail(400, 10014, "a namespace with this account ID and title already exists")
            ns = {"id": uuid.uuid4().hex, "title": body["title"], "supports_url_encoding": True}
            self.kv[ns["id"]] = ns
            return ok(ns)
        if path.startswith(f"{a}/storage/kv/namespaces/") and method == "DELETE":
            if self.kv.pop(seg[-1], None) is None:
                return fail(404, 10013, "namespace not found")
            return ok(None)
        # Workers
        if path == f"{a}/workers/scripts" and method == "GET":
            return ok([{"id": n, "tags": s["metadata"].get("tags", [])} for n, s in self.scripts.items()])
        m = re.fullmatch(rf"{a}/workers/scripts/([^/]+)(/.*)?", path)
        if m:
            script, rest = m.group(1), m.group(2) or ""
            if rest == "" and method == "PUT":
                self.scripts[script] = {"metadata": body["metadata"], "modules": body.get("files", {})}
                return ok({"id": script, "etag": uuid.uuid4().hex})
            if script not in self.scripts:
                return fail(404, 10007, "This Worker does not exist on your account.")
            if rest == "" and method == "DELETE":
                del self.scripts[script]
                self.secrets.pop(script, None)
                return ok(None)
            if rest == "/script-settings":
                return ok({"logpush": False, "tail_consumers": []})
            if rest == "/secrets" and method == "GET":
                return ok([{"name": k, "type": "secret_text"} for k in self.secrets.get(script, {})])
            if rest == "/secrets" and method == "PUT":
                self.secrets.setdefault(script, {})[body["name"]] = body["text"]
                return ok({"name": body["name"], "type": "secret_text"})
            if rest.startswith("/secrets/") and method == "DELETE":
                if self.secrets.get(script, {}).pop(rest.split("/")[-1], None) is None:
                    return fail(404, 10056, "secret not found")
                return ok(None)
        # Pages
        if path == f"{a}/pages/projects":
            if method == "GET":
                return self._paged(list(self.pages.values()), q)
            if body["name"] in self.pages:
                return fail(409, 8000002, "A project with this name already exists. Choose a different project name.")
            self.pages[body["name"]] = {"id": str(uuid.uuid4()), "name": body["name"],
                                        "subdomain": f"{body['name']}.pages.dev",
                                        "production_branch": body["production_branch"]}
            return ok(self.pages[body["name"]])
        m = re.fullmatch(rf"{a}/pages/projects/([^/]+)(/domains(?:/([^/]+))?)?", path)
        if m:
            project, domains, domain = m.group(1), m.group(2), m.group(3)
            if project not in self.pages:
                return fail(404, 8000007, "Project not found. The specified project name does not match "
                                          "any of your existing projects.")
            if not domains:
                if method == "DELETE":
                    del self.pages[project]
                    return ok(None)
                return ok(self.pages[project])
            names = self.pages_domains.setdefault(project, set())
            if domain is None:
                if body["name"] in names:
                    return fail(400, 8000018, "You have already added this custom domain.")
                names.add(body["name"])
                return ok({"id": str(uuid.uuid4()), "name": body["name"], "status": "initializing"})
            if domain not in names:
                return fail(404, 8000009, "Domain not found")
            if method == "DELETE":
                names.discard(domain)
                return ok(None)
            return ok({"id": "d", "name": domain, "status": "active"})
        # Workers custom domains
        if path == f"{a}/workers/domains":
            if method == "GET":
                return ok([d for d in self.worker_domains.values()
                           if "hostname" not in q or d["hostname"] == q["hostname"]])
            existing = next((d for d in self.worker_domains.values() if d["hostname"] == body["hostname"]), None)
            domain = existing or {"id": uuid.uuid4().hex, "hostname": body["hostname"]}
            domain.update(service=body["service"], zone_id=body.get("zone_id"), environment="production",
                          zone_name="nno.app")
            self.worker_domains[domain["id"]] = domain
            return ok(domain)
        if path.startswith(f"{a}/workers/domains/") and method == "DELETE":
            if self.worker_domains.pop(seg[-1], None) is None:
                return fail(404, 100116, "Domain not found")
            return ok(None)
        # DNS records
        if path == f"{z}/dns_records":
            if method == "GET":
                items = list(self.records.values())
                if "name.exact" in q:
                    items = [r for r in items if r["name"] == q["name.exact"]]
                if "name.contains" in q:
                    items = [r for r in items if q["name.contains"] in r["name"]]
                return self._paged(items, q)
            if any(r["name"] == body["name"] for r in self.records.values()):
                return fail(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
            rec = {"id": uuid.uuid4().hex, **body, "proxiable": True, "settings": {}, "meta": {}, "tags": [],
                   "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z"}
            self.records[rec["id"]] = rec
            return ok(rec)
        if path.startswith(f"{z}/dns_records/") and method == "DELETE":
            if self.records.pop(seg[-1], None) is None:
                return fail(404, 81044, "Record does not exist.")
            return ok({"id": seg[-1]})
        # Custom hostnames (Cloudflare for SaaS)
        if path == f"{z}/custom_hostnames":
            if method == "GET":
                items = [h for h in self.custom.values()
                         if "hostname.exact" not in q or h["hostname"] == q["hostname.exact"]]
                return self._paged(items, q)
            if any(h["hostname"] == body["hostname"] for h in self.custom.values()):
                return fail(409, 1406, "Duplicate custom hostname found.")
            host = {"id": uuid.uuid4().hex, "hostname": body["hostname"], "ssl": body.get("ssl", {}),
                    "custom_metadata": body.get("custom_metadata"), "status": "pending"}
            self.custom[host["id"]] = host
            return ok(host)
        if path.startswith(f"{z}/custom_hostnames/") and method == "DELETE":
            if self.custom.pop(seg[-1], None) is None:
                return fail(404, 1436, "The custom hostname was not found.")
            return ok({"id": seg[-1]})
        return fail(404, 7003, f"Could not route to {path}, perhaps your object identifier is invalid?")

    def _race_create_d1(self, name: str) -> None:
        if name in self.race:  # another worker created it just before us
            self.race.discard(name)
            self.d1[name] = {"uuid": str(uuid.uuid4()), "name": name, "created_at": "2026-01-01T00:00:00Z"}
