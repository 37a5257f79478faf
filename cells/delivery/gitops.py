"""GitOps delivery: commit rendered manifests into a git repository that Argo CD and Crossplane watch.

One file per object at `clusters/<cluster>/<namespace>/<kind>-<name>.yaml`. Real git
(the CLI), serialised by a file lock so several workers on one host never interleave;
with a remote, the worker resets to the remote branch, commits and pushes, and a
rejected push is a transient error (the retry starts again from the new remote head).

Group commit: `batch()` holds the lock for a group of deliveries; each stages its files
in the working tree and one `git add` + `git commit` makes them a single commit.
"""
from __future__ import annotations

import copy
import fcntl
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from cells.rendering import to_yaml
from policy.yamlload import load_yaml

from .base import DeliveryError, ObjectRef, Result, TransientDeliveryError, revision_of

PATHS_PER_GIT_CALL = 500  # paths on one `git add` command line

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

    def git(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, text=True,
                                  env=self._env(), timeout=self.timeout, input=input)
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

    def _start_clean(self) -> None:
        """Start from the last commit: a crashed earlier attempt may have left files or a half-made index behind
        (files it wrote are rewritten by the retry, and so end up in its commit)."""
        if self.head():
            self.git("reset", "-q", "--hard", "HEAD")
        else:
            self.git("read-tree", "--empty")
        self.git("clean", "-fdq")

    def _commit(self, message: str) -> str | None:
        """Commit the staged changes; None when there is nothing to commit (never an empty commit)."""
        if self.git("diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        self.git("commit", "-q", "-F", "-", input=message)  # stdin: a group's message can outgrow one argument
        sha = self.git("rev-parse", "HEAD").stdout.strip()
        if self.remote_url:
            self.git("push", "-q", "origin", f"HEAD:{self.branch}")
        return sha

    def head(self) -> str | None:
        proc = self.git("rev-parse", "--verify", "-q", "HEAD", check=False) if (self.repo / ".git").exists() else None
        return proc.stdout.strip() if proc and proc.returncode == 0 else None

    # -- the target interface -----------------------------------------------------------------

    @contextmanager
    def batch(self):
        """Hold the repository (the lock) for a group of deliveries, from a clean copy of the last commit."""
        with self._locked():
            self._start_clean()
            yield GitBatch(self)

    def apply(self, objects: list[dict], *, revision: int, message: str) -> Result:
        with self.batch() as batch:
            staged = batch.apply(objects, revision=revision)
            sha = batch.commit(message)
        if sha is None:
            return Result(False, staged.detail if not staged.changed else "target already holds these revisions")
        return Result(True, f"commit {sha[:12]}: {staged.detail}")

    def delete(self, refs: list[ObjectRef], *, message: str) -> Result:
        with self.batch() as batch:
            staged = batch.delete(refs)
            sha = batch.commit(message)
        if sha is None:
            return Result(False, "already absent")
        return Result(True, f"commit {sha[:12]}: {staged.detail}")

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
                parsed = load_yaml(path.read_text())
            except FileNotFoundError:
                return None
            if len(_parsed) >= PARSED_CACHE_SIZE:
                _parsed.clear()
            _parsed[key] = parsed
        return copy.deepcopy(parsed)


class GitBatch:
    """The deliveries of one group commit: each stages its files in the working tree (all of a call's files or
    none), `commit` adds them in one go and makes one commit. Only while the target's lock is held."""

    def __init__(self, target: GitOpsTarget):
        self.target = target
        self.paths: set[str] = set()  # written or removed since the last commit
        self.broken: str | None = None

    def apply(self, objects: list[dict], *, revision: int) -> Result:
        changes, skipped = [], []
        for obj in objects:  # everything that can fail on a bad object runs before the first write
            ref = ObjectRef.of(obj)
            path = self.target.repo / ref.path
            held, ours = revision_of(self.target._load(path)), revision_of(obj)
            if held is not None and ours is not None and held > ours:
                skipped.append(f"{ref.path} (holds revision {held} > {ours})")
                continue
            text = to_yaml([obj])
            if path.exists() and path.read_text() == text:
                continue
            changes.append((ref.path, text))
        self._write(changes)
        note = f"; skipped {', '.join(skipped)}" if skipped else ""
        if not changes:
            return Result(False, "target already holds these revisions" + note)
        return Result(True, f"{len(changes)} file(s)" + note)

    def delete(self, refs: list[ObjectRef]) -> Result:
        removed = [r.path for r in refs if (self.target.repo / r.path).exists()]
        self._write([(path, None) for path in removed])
        return Result(bool(removed), f"removed {len(removed)} file(s)" if removed else "already absent")

    def _write(self, changes: list[tuple[str, str | None]]) -> None:
        """Write (text) or remove (None) the files: all of them, or none if one fails."""
        undo: list[tuple[Path, bytes | None]] = []
        try:
            for rel, text in changes:
                path = self.target.repo / rel
                undo.append((path, path.read_bytes() if path.exists() else None))
                if text is None:
                    path.unlink(missing_ok=True)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
        except BaseException:
            for path, old in reversed(undo):
                try:
                    if old is None:
                        path.unlink(missing_ok=True)
                    else:
                        path.write_bytes(old)
                except OSError as exc:  # the working tree no longer matches what was staged: commit nothing
                    self.broken = f"gitops: cannot restore {path} after a failed write: {exc}"
            raise
        self.paths.update(rel for rel, _ in changes)

    def commit(self, message: str) -> str | None:
        """One commit of everything staged (None if that changes nothing), pushed when there is a remote."""
        if self.broken:
            raise DeliveryError(self.broken)
        paths, self.paths = sorted(self.paths), set()
        present = [p for p in paths if (self.target.repo / p).exists()]
        gone = [p for p in paths if not (self.target.repo / p).exists()]
        for i in range(0, len(present), PATHS_PER_GIT_CALL):
            self.target.git("add", "--", *present[i:i + PATHS_PER_GIT_CALL])
        for i in range(0, len(gone), PATHS_PER_GIT_CALL):
            self.target.git("rm", "-q", "--cached", "--ignore-unmatch", "--", *gone[i:i + PATHS_PER_GIT_CALL])
        return self.target._commit(message)
