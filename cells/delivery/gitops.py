"""GitOps delivery: commit rendered manifests into a git repository that Argo CD and Crossplane watch.

One file per object at `clusters/<cluster>/<namespace>/<kind>-<name>.yaml`. Real git
(the CLI), serialised by a file lock so several workers on one host never interleave;
with a remote, the worker resets to the remote branch, commits and pushes, and a
rejected push is a transient error (the retry starts again from the new remote head).
"""
from __future__ import annotations

import copy
import fcntl
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import yaml

from cells.rendering import to_yaml

from .base import DeliveryError, ObjectRef, Result, TransientDeliveryError, revision_of

# Parsed files by (path, mtime, size, inode): a rewritten file is a new key.
PARSED_CACHE_SIZE = 4096
_parsed: dict[tuple, object] = {}

AUTHOR_NAME = "idp-multicloud"
AUTHOR_EMAIL = "idp-multicloud@localhost"


class GitOpsTarget:
    name = "gitops"

    def __init__(self, repo_dir: str | Path, remote_url: str | None = None, branch: str = "main",
                 ssh_key: str | None = None, timeout: float = 60):
        self.repo = Path(repo_dir)
        self.remote_url = remote_url or None
        self.branch = branch
        self.ssh_key = ssh_key
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> "GitOpsTarget":
        from django.conf import settings

        return cls(settings.IDP_GITOPS_REPO, settings.IDP_GITOPS_REMOTE or None, settings.IDP_GITOPS_BRANCH,
                   settings.IDP_GITOPS_SSH_KEY or None)

    # -- git plumbing -------------------------------------------------------------------

    def _env(self) -> dict:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0",
               "GIT_AUTHOR_NAME": AUTHOR_NAME, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
               "GIT_COMMITTER_NAME": AUTHOR_NAME, "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL}
        if self.ssh_key:
            # A deploy key: only this identity, and pin the host key on first use.
            env["GIT_SSH_COMMAND"] = f"ssh -i {self.ssh_key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
        return env

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, text=True,
                                  env=self._env(), timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise TransientDeliveryError(f"git {args[0]} timed out after {self.timeout:g}s") from exc
        if check and proc.returncode != 0:
            message = f"git {args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[:500]}"
            if args[0] in ("fetch", "push", "clone", "pull"):
                raise TransientDeliveryError(message)
            raise DeliveryError(message)
        return proc

    def _ensure_repo(self) -> None:
        if (self.repo / ".git").exists():
            return
        self.repo.mkdir(parents=True, exist_ok=True)
        if self.remote_url:
            proc = subprocess.run(["git", "clone", "--branch", self.branch, self.remote_url, str(self.repo)],
                                  capture_output=True, text=True, env=self._env(), timeout=self.timeout)
            if proc.returncode == 0:
                return
            if "not found in upstream" not in proc.stderr and "empty repository" not in proc.stderr:
                raise TransientDeliveryError(f"git clone failed: {proc.stderr.strip()[:500]}")
            self.git("init", "-q", "-b", self.branch)
            self.git("remote", "add", "origin", self.remote_url)
        else:
            self.git("init", "-q", "-b", self.branch)

    @contextmanager
    def _locked(self):
        self.repo.parent.mkdir(parents=True, exist_ok=True)
        with open(self.repo.parent / f".{self.repo.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._ensure_repo()
                # We hold the lock, so an index.lock can only be left by a git killed mid-commit (worker died).
                (self.repo / ".git" / "index.lock").unlink(missing_ok=True)
                self._sync_from_remote()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sync_from_remote(self) -> None:
        """The remote is the source of truth: start every change from its head."""
        if not self.remote_url:
            return
        self.git("fetch", "-q", "origin")
        if self.git("rev-parse", "--verify", "-q", f"origin/{self.branch}", check=False).returncode == 0:
            self.git("checkout", "-q", "-B", self.branch, f"origin/{self.branch}")
            self.git("reset", "-q", "--hard", f"origin/{self.branch}")

    def _commit(self, message: str) -> str | None:
        """Commit the staged changes; None when there is nothing to commit (never an empty commit)."""
        if self.git("diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        self.git("commit", "-q", "-m", message)
        sha = self.git("rev-parse", "HEAD").stdout.strip()
        if self.remote_url:
            self.git("push", "-q", "origin", f"HEAD:{self.branch}")
        return sha

    def head(self) -> str | None:
        proc = self.git("rev-parse", "--verify", "-q", "HEAD", check=False) if (self.repo / ".git").exists() else None
        return proc.stdout.strip() if proc and proc.returncode == 0 else None

    # -- the target interface -----------------------------------------------------------------

    def apply(self, objects: list[dict], *, revision: int, message: str) -> Result:
        written, skipped = [], []
        with self._locked():
            # A crashed earlier attempt may have left files behind: start from the last commit.
            if self.head():
                self.git("reset", "-q", "--hard", "HEAD")
            for obj in objects:
                ref = ObjectRef.of(obj)
                path = self.repo / ref.path
                current = self._load(path)
                held, ours = revision_of(current), revision_of(obj)
                if held is not None and ours is not None and held > ours:
                    skipped.append(f"{ref.path} (holds revision {held} > {ours})")
                    continue
                text = to_yaml([obj])
                if path.exists() and path.read_text() == text:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                self.git("add", "--", ref.path)
                written.append(ref.path)
            sha = self._commit(message)
        if sha is None:
            return Result(False, "target already holds these revisions" + (f"; skipped {', '.join(skipped)}" if skipped else ""))
        return Result(True, f"commit {sha[:12]}: {len(written)} file(s)" + (f"; skipped {', '.join(skipped)}" if skipped else ""))

    def delete(self, refs: list[ObjectRef], *, message: str) -> Result:
        with self._locked():
            if self.head():
                self.git("reset", "-q", "--hard", "HEAD")
            removed = [r.path for r in refs if (self.repo / r.path).exists()]
            for path in removed:
                self.git("rm", "-q", "--", path)
            sha = self._commit(message)
        if sha is None:
            return Result(False, "already absent")
        return Result(True, f"commit {sha[:12]}: removed {len(removed)} file(s)")

    def read(self, ref: ObjectRef) -> dict | None:
        return self._load(self.repo / ref.path)

    def list(self, cluster: str, api_version: str, kind: str) -> list[dict]:
        """The cluster-scoped objects of one kind the repository holds for a management cluster."""
        folder = self.repo / "clusters" / cluster / "_cluster"
        objects = (self._load(path) for path in sorted(folder.glob(f"{kind.lower()}-*.yaml")))
        return [o for o in objects if o and o.get("apiVersion") == api_version and o.get("kind") == kind]

    @staticmethod
    def _load(path: Path) -> dict | None:
        """The file's object; parsed once per version of the file (the simulator reads the platform package for
        every claim it observes). Callers get their own copy."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
        parsed = _parsed.get(key)
        if parsed is None:
            try:
                parsed = yaml.safe_load(path.read_text())
            except FileNotFoundError:
                return None
            if len(_parsed) >= PARSED_CACHE_SIZE:
                _parsed.clear()
            _parsed[key] = parsed
        return copy.deepcopy(parsed)
