"""The traffic provider interface: where a public host points, and switching it to a side's endpoint.

`TrafficProviderBase` holds the rule every provider shares, once: a switch normalises the names, reads
the current answer, does nothing (and says so) when it already points at the target, otherwise has the
subclass apply the change, then reads it back and raises ProviderError when the answer did not move.
A provider is a short subclass: `_read` (the host's answer, with what `_apply` needs in `raw`) and
`_apply` (the write), plus optional hooks for a mode whose "already there" or wording differs.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from dr.errors import ProviderError
from dr.traffic.records import norm_name, norm_value, rtype_for


@dataclass
class TrafficState:
    host: str
    value: str | None  # the record's answer (IP or host name); None when the record does not exist
    detail: dict
    # What the provider read (record ids, a policy and its etag…) for its own _apply; never shown or stored.
    raw: Any = field(default=None, repr=False, compare=False)


@dataclass
class SwitchResult:
    changed: bool  # False: the host already pointed there (a no-op that says so)
    previous: str | None
    current: str
    detail: str


class TrafficProvider(Protocol):
    name: str

    def current(self, host: str) -> TrafficState:
        """Read the host's record. Raises ProviderError when the zone or record is missing."""

    def switch(self, host: str, to: str) -> SwitchResult:
        """Point `host` at `to`, then read it back: a switch that did not take effect raises ProviderError."""

    def switch_many(self, items: list[tuple[str, str]]) -> list[SwitchResult]:
        """Switch several hosts (a region evacuation); each result as `switch` would return it."""


def target_value(to: str) -> str:
    """The answer a record pointing at `to` reads back as (IP canonical, host name lower case, no dot)."""
    return norm_value(rtype_for(to), to)


class TrafficProviderBase(ABC):
    """Switch-then-verify, written once. Subclasses implement `_read` and `_apply`."""

    name: str

    @property
    def label(self) -> str:
        """How messages name this provider."""
        return self.name

    # -- the interface -----------------------------------------------------------------------------

    def current(self, host: str) -> TrafficState:
        return self._scrubbed(self._read, norm_name(host))

    def switch(self, host: str, to: str) -> SwitchResult:
        return self._scrubbed(self._switch, norm_name(host), to)

    def switch_many(self, items: list[tuple[str, str]]) -> list[SwitchResult]:
        return [self.switch(host, to) for host, to in items]

    # -- the rule ----------------------------------------------------------------------------------

    def _switch(self, host: str, to: str) -> SwitchResult:
        target = target_value(to)
        before = self._read(host)
        if self._settled(host, target, before):
            return self._unchanged(host, to, before)
        how = self._apply(host, target, before)
        after = self._read(host)
        if after.value != target:
            raise ProviderError(f"{self.label}: switch did not take effect: {self._not_taken(host, to, after)}")
        return self._switched(host, to, before.value, how, after, self._confirm(host, target, after))

    def _unchanged(self, host: str, to: str, state: TrafficState) -> SwitchResult:
        via = self._serving(state)
        where = f"is already served by {via} ({to})" if via else f"already points at {to}"
        return SwitchResult(False, state.value, to, f"{self.label}: {host} {where}; nothing changed")

    def _not_taken(self, host: str, to: str, after: TrafficState) -> str:
        """Why a read-back fails, for one host (route53 joins several of these in one error)."""
        answers = "is served by" if self._serving(after) else "still answers"
        return f"{host} {answers} {after.value} (expected {to})"

    def _switched(self, host: str, to: str, previous: str | None, how: str, after: TrafficState,
                  confirmed: str = "") -> SwitchResult:
        detail = (f"{self.label}: {host} {previous} -> {to}" + (f" {how}" if how else "")
                  + f" and verified by read-back ({host} answers {after.value}){confirmed}")
        return SwitchResult(True, previous, to, detail)

    def _scrubbed(self, call, *args):
        """Run `call`; a ProviderError that mentions one of `_secrets()` is raised again with it masked."""
        try:
            return call(*args)
        except ProviderError as exc:
            text = str(exc)
            masked = text
            for secret in self._secrets():
                if secret and len(secret) >= 8:  # never mask a short common word
                    masked = masked.replace(secret, "***")
            if masked == text:
                raise
            raise type(exc)(masked) from None

    # -- hooks -------------------------------------------------------------------------------------

    @abstractmethod
    def _read(self, host: str) -> TrafficState:
        """The host's answer, normalised (records.norm_value); ProviderError when the zone or record is missing."""

    @abstractmethod
    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        """Make `host` answer `target`; return how, for the result's detail (e.g. 'in zone example.com')."""

    def _settled(self, host: str, target: str, current: TrafficState) -> bool:
        """Whether the host already serves `target` and nothing needs writing."""
        return current.value == target

    def _serving(self, state: TrafficState) -> str | None:
        """What serves the host when it is not a plain record (a steering policy, a pool); None for a record."""
        return None

    def _confirm(self, host: str, target: str, after: TrafficState) -> str:
        """An extra check after the read-back (e.g. a real DNS query); raise when it fails, return its detail."""
        return ""

    def _secrets(self) -> list[str]:
        """Credentials this provider holds, masked out of every error it raises."""
        return []
