"""Secrets mounted as files (Kubernetes secrets, Docker secrets): read once, never echoed."""
from __future__ import annotations

from .errors import ProviderError


def read_secret_file(path: str, source: str, setting: str) -> str:
    """The file's content without surrounding white space; an unreadable file is a ProviderError naming
    the setting, not the path's content."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise ProviderError(f"{source}: cannot read {setting} ({exc.strerror})") from exc
