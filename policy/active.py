"""The active policy: the configured file, reloaded when it changes.

An edit that does not validate is reported (`last_error()`) and the previous
policy stays active; after a restart, the last good version comes from the
database. Every newly active version is recorded as a PolicyVersion and the cell
registry is synced into the database.
"""
from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.dispatch import Signal
from django.utils import timezone

from .loader import Policy, PolicyError, load_policy_file, parse_policy

log = logging.getLogger(__name__)

policy_activated = Signal()  # sender=Policy, policy=Policy

_lock = threading.Lock()
_state: dict = {"policy": None, "signature": None, "error": None}


def _signature():
    path = settings.IDP_POLICY_FILE
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size)


def active_policy() -> Policy:
    sig = _signature()
    current = _state["policy"]
    if current is not None and sig == _state["signature"]:
        return current
    with _lock:
        if _state["policy"] is not None and sig == _state["signature"]:
            return _state["policy"]
        try:
            policy = load_policy_file(settings.IDP_POLICY_FILE)
        except PolicyError as exc:
            _state["error"] = exc
            _state["signature"] = sig
            if _state["policy"] is None:
                _state["policy"] = _last_good(exc)
            log.error("policy file rejected, keeping %s active: %s", _state["policy"].version, exc)
            return _state["policy"]
        _state["error"] = None
        _state["signature"] = sig
        if current is None or current.digest != policy.digest:
            record_version(policy)
            policy_activated.send(sender=Policy, policy=policy)
        _state["policy"] = policy
        return policy


def _last_good(error: PolicyError) -> Policy:
    from .models import PolicyVersion

    row = PolicyVersion.objects.order_by("-activated_at").first()
    if row is None:
        raise error
    return parse_policy(row.text, source=f"{row.source} (last good version {row.version})")


def record_version(policy: Policy):
    """The PolicyVersion row for `policy`, created on first sight."""
    from .models import PolicyVersion

    row, created = PolicyVersion.objects.get_or_create(
        digest=policy.digest,
        defaults={
            "label": policy.label or "",
            "version": policy.version,
            "source": policy.source,
            "text": policy.text,
            "activated_at": timezone.now(),
        },
    )
    if not created and _state["policy"] is not None and _state["policy"].digest != policy.digest:
        PolicyVersion.objects.filter(pk=row.pk).update(activated_at=timezone.now())
    return row


def last_error() -> PolicyError | None:
    """Why the policy file on disk is not the active one, if it is not."""
    active_policy()
    return _state["error"]


def reset() -> None:
    """Forget the cached policy (tests, and after `policy` commands change the file)."""
    with _lock:
        _state.update(policy=None, signature=None, error=None)
