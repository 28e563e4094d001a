"""Provider `local`'s repositories: one bare git repository per platform under the data directory,
written with dulwich. A change is one commit of every changed file, and the branch moves by
compare-and-swap, so two writers never lose each other's commit (the loser retries on the new head).
The repository is an ordinary one: `git log`, `git clone` and `git push` work on it.

A `git push` into it runs its `post-receive` hook, which leaves a marker named after the repository
in `{root}/.pushed/`; the build runner takes the markers (`take_pushed`) and builds the new head.
The service's own commits move the branch directly and leave no marker (they queue their build).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

BRANCH = "main"
PUSHED_DIR = ".pushed"
# Relative to the repository ($GIT_DIR, where git runs the hook), so the data directory may move.
POST_RECEIVE = """#!/bin/sh
# NNO: a push builds the console. The CLI Service's build runner takes this marker and builds the
# new head of main (the marker carries nothing; the runner reads the branch itself).
mkdir -p "$GIT_DIR/../{pushed}" && : > "$GIT_DIR/../{pushed}/{name}"
"""
_REF = b"refs/heads/" + BRANCH.encode()
AUTHOR = b"NNO CLI Service <cli@nno.local>"


def _head(repo: Repo) -> Any:
    refs: Any = repo.refs  # dulwich types refs as NewTypes of bytes
    sha: Any = refs.as_dict().get(_REF)
    return sha


class StaleHead(Exception):
    """The branch moved between reading it and writing the commit."""


def _nest(files: dict[str, bytes]) -> dict[str, object]:
    root: dict[str, object] = {}
    for path, data in files.items():
        node = root
        parts = path.split("/")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            assert isinstance(child, dict)
            node = child
        node[parts[-1]] = data
    return root


class GitStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def exists(self, name: str) -> bool:
        return (self.path(name) / "HEAD").exists()

    def init(self, name: str) -> bool:
        """Create the bare repository; False when it was there already."""
        path = self.path(name)
        if self.exists(name):
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        repo = Repo.init_bare(str(path), mkdir=True)
        refs: Any = repo.refs
        refs.set_symbolic_ref(b"HEAD", _REF)
        repo.close()
        self.install_hook(name)
        return True

    def install_hook(self, name: str) -> None:
        """The post-receive hook that reports pushes (rewritten when it differs: idempotent)."""
        hook = self.path(name) / "hooks" / "post-receive"
        text = POST_RECEIVE.format(pushed=PUSHED_DIR, name=name)
        if hook.is_file() and hook.read_text() == text and os.access(hook, os.X_OK):
            return
        hook.parent.mkdir(parents=True, exist_ok=True)
        tmp = hook.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(hook)

    def take_pushed(self) -> list[str]:
        """Names of the repositories pushed to since the last call; each marker is taken by exactly
        one caller (whoever unlinks it), so several runners share them."""
        marks = self.root / PUSHED_DIR
        try:
            entries = list(os.scandir(marks))
        except FileNotFoundError:
            return []
        taken = []
        for entry in entries:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            taken.append(entry.name)
        return taken

    def remove(self, name: str) -> bool:
        """Delete the repository (and any push marker); False when it was not there."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / PUSHED_DIR / name)
        path = self.path(name)
        if not path.exists():
            return False
        # Renamed first, so a half-deleted directory is never mistaken for the repository.
        doomed = path.with_name(f".{path.name}.deleting-{os.getpid()}-{time.monotonic_ns()}")
        path.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def head(self, name: str) -> str | None:
        repo = Repo(str(self.path(name)))
        try:
            sha = _head(repo)
            return sha.decode() if sha else None
        finally:
            repo.close()

    def read(self, name: str, sha: str | None = None) -> dict[str, bytes]:
        """Every file of the commit `sha` (the branch head when None), by path."""
        repo = Repo(str(self.path(name)))
        try:
            ref = sha.encode() if sha else _head(repo)
            if not ref:
                return {}
            commit = repo[ref]
            assert isinstance(commit, Commit)
            out: dict[str, bytes] = {}
            for entry in repo.object_store.iter_tree_contents(commit.tree):
                blob = repo[entry.sha]
                assert isinstance(blob, Blob)
                out[entry.path.decode()] = blob.data
            return out
        finally:
            repo.close()

    def commit(self, name: str, changes: dict[str, bytes | None], message: str, *,
               expected_head: str | None) -> str | None:
        """One commit applying `changes` (None deletes a file) on top of `expected_head`. Returns
        its sha, or None when nothing would change. Raises StaleHead when the branch moved."""
        repo = Repo(str(self.path(name)))
        try:
            current = _head(repo)
            if (current.decode() if current else None) != expected_head:
                raise StaleHead(name)
            files = self.read(name, expected_head) if expected_head else {}
            updated = dict(files)
            for path, data in changes.items():
                if data is None:
                    updated.pop(path, None)
                else:
                    updated[path] = data
            if updated == files and expected_head is not None:
                return None
            store = repo.object_store

            def write_tree(node: dict[str, object]) -> Any:
                tree = Tree()
                for entry, value in sorted(node.items()):
                    if isinstance(value, dict):
                        tree.add(entry.encode(), 0o040000, write_tree(value))
                    else:
                        assert isinstance(value, bytes)
                        blob = Blob.from_string(value)
                        store.add_object(blob)
                        tree.add(entry.encode(), 0o100644, blob.id)
                store.add_object(tree)
                return tree.id

            commit = Commit()
            commit.tree = write_tree(_nest(updated))
            commit.parents = [current] if current else []
            commit.author = commit.committer = AUTHOR
            commit.author_time = commit.commit_time = int(time.time())
            commit.author_timezone = commit.commit_timezone = 0
            commit.encoding = b"UTF-8"
            commit.message = message.encode() + (b"" if message.endswith("\n") else b"\n")
            store.add_object(commit)
            refs: Any = repo.refs
            if not refs.set_if_equals(_REF, current, commit.id):
                raise StaleHead(name)
            return commit.id.decode()
        finally:
            repo.close()

    def log(self, name: str, limit: int = 50) -> list[dict[str, object]]:
        repo = Repo(str(self.path(name)))
        try:
            head = _head(repo)
            if not head:
                return []
            out: list[dict[str, object]] = []
            for entry in repo.get_walker(include=[head], max_entries=limit):
                c = entry.commit
                out.append({"sha": c.id.decode(), "message": c.message.decode("utf-8", "replace").strip(),
                            "at": c.commit_time * 1000})
            return out
        finally:
            repo.close()
