"""The traffic provider interface: where a public host points, and switching it to a side's endpoint.

`TrafficProviderBase` holds the rule every provider shares, once: a switch normalises the names, reads
the current answer, does nothing (and says so) when it already points at the target, otherwise has the
subclass apply the change, then reads it back and raises ProviderError when the answer did not move.
A provider is a short subclass: `_read` (the host's answer, with what `_apply` needs in `raw`) and
`_apply` (the write), plus optional hooks for a mode whose "already there" or wording differs.

`switch_many` (a region evacuation) is the same rule for many hosts, also written once here: hosts are grouped
by `_zone_key` (a DNS zone), each zone is read with `_read_many` (one listing where the API allows), each zone's
changes are written with ONE `_apply_many` (one request, chunked only at the API's documented limits), then every
zone is read back. A provider that cannot batch (one steering policy or pool per host) keys each host on its own
and gets the per-host `_read`/`_apply`. The result is per host, as `switch` would return it; when any host did not
take, SwitchManyError says which (and why) and carries the results of the others: a partial batch is never
reported as all switched.

Every call to a provider's API goes through `_api` first: the provider's rate limit (dr.traffic.ratelimit, from
the policy) and the call counters (`calls`, `call_counts` by kind) that benchmarks report.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dr.errors import ProviderError, TransientProviderError
from dr.traffic import ratelimit
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


@dataclass
class Change:
    """One host of a batched switch, as `_apply_many` gets it."""

    host: str
    to: str                    # the endpoint as asked (for messages and results)
    target: str                # what the record will read back as (target_value(to))
    before: TrafficState
    # Set by `_apply_many` when this host's part of the write was refused (the others may still have taken).
    error: ProviderError | None = None


class SwitchManyError(ProviderError):
    """`switch_many` did not switch every host. `failed`: host -> why it did not take; `results`: host -> the
    SwitchResult of each host that did (or already pointed there), verified by read-back. Running it again is
    safe: the hosts already switched are no-ops."""

    def __init__(self, message: str, results: dict[str, SwitchResult] | None = None,
                 failed: dict[str, ProviderError] | None = None):
        super().__init__(message)
        self.results = dict(results or {})
        self.failed = dict(failed or {})


class TransientSwitchManyError(SwitchManyError, TransientProviderError):
    """Every host that did not take failed for a reason worth retrying (throttling, timeout, unreachable)."""


class TrafficProvider(Protocol):
    name: str

    def current(self, host: str) -> TrafficState:
        """Read the host's record. Raises ProviderError when the zone or record is missing."""

    def switch(self, host: str, to: str) -> SwitchResult:
        """Point `host` at `to`, then read it back: a switch that did not take effect raises ProviderError."""

    def switch_many(self, items: list[tuple[str, str]]) -> list[SwitchResult]:
        """Switch several hosts (a region evacuation), one write per DNS zone; each result as `switch` would
        return it. Raises SwitchManyError (with the per-host outcome) when any host did not take."""


def target_value(to: str) -> str:
    """The answer a record pointing at `to` reads back as (IP canonical, host name lower case, no dot)."""
    return norm_value(rtype_for(to), to)


class TrafficProviderBase(ABC):
    """Switch-then-verify, written once. Subclasses implement `_read` and `_apply` (and, to batch per zone,
    `_zone_key`, `_read_many`, `_apply_many`)."""

    name: str
    # The provider's rate limit (dr.providers.adapter attaches the policy's); a provider built by hand is unlimited.
    limiter: ratelimit.Limiter = ratelimit.UNLIMITED
    calls: int = 0  # API calls this instance has made (reads and writes); per kind in `call_counts`

    @property
    def label(self) -> str:
        """How messages name this provider."""
        return self.name

    @property
    def call_counts(self) -> Counter:
        """API calls this instance has made, by kind ("read", "write")."""
        return self.__dict__.setdefault("_call_counts", Counter())

    # -- the interface -----------------------------------------------------------------------------

    def current(self, host: str) -> TrafficState:
        return self._scrubbed(self._read, norm_name(host))

    def switch(self, host: str, to: str) -> SwitchResult:
        return self._scrubbed(self._switch, norm_name(host), to)

    def switch_many(self, items: list[tuple[str, str]]) -> list[SwitchResult]:
        return self._scrubbed(self._switch_many, list(items))

    # -- API calls ---------------------------------------------------------------------------------

    def _api(self, kind: str = "read") -> None:
        """Before every call to the provider's API: wait for the rate limit, then count the call."""
        self.limiter.acquire()
        self.calls += 1
        self.call_counts[kind] += 1

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

    def _switch_many(self, items: list[tuple[str, str]]) -> list[SwitchResult]:
        wanted: dict[str, str] = {}
        for host, to in items:
            host = norm_name(host)
            if host in wanted and target_value(wanted[host]) != target_value(to):
                raise ProviderError(f"{self.label}: {host} asked to point at both {wanted[host]} and {to}")
            wanted[host] = to
        failed: dict[str, ProviderError] = {}
        zones: dict[Hashable, list[str]] = {}
        for host in wanted:
            try:
                zones.setdefault(self._zone_key(host), []).append(host)
            except ProviderError as exc:
                failed[host] = exc
        before: dict[str, TrafficState] = {}
        for zone, hosts in zones.items():
            for host, state in self._read_each(zone, hosts).items():
                if isinstance(state, ProviderError):
                    failed[host] = state
                else:
                    before[host] = state
        if failed:  # nothing is written unless every host can be read
            raise self._many_error("; ".join(str(e) for e in failed.values())
                                   + ("" if len(wanted) == 1 else " (nothing was changed)"), {}, failed)

        results: dict[str, SwitchResult] = {}
        written: list[tuple[Hashable, list[Change], str]] = []
        for zone, hosts in zones.items():
            changes = []
            for host in hosts:
                target = target_value(wanted[host])
                if self._settled(host, target, before[host]):
                    results[host] = self._unchanged(host, wanted[host], before[host])
                else:
                    changes.append(Change(host, wanted[host], target, before[host]))
            if not changes:
                continue  # the whole zone already points there: no write
            try:
                how = self._apply_many(zone, changes)
            except ProviderError as exc:  # the zone's write failed: the read-back says what took anyway
                how = ""
                for change in changes:
                    change.error = change.error or exc
            written.append((zone, changes, how))

        for zone, changes, how in written:
            after = self._read_each(zone, [c.host for c in changes])
            for c in changes:
                state = after[c.host]
                if isinstance(state, ProviderError):
                    failed[c.host] = c.error or state
                    continue
                if state.value != c.target:
                    failed[c.host] = c.error or ProviderError(self._not_taken(c.host, c.to, state))
                    continue
                try:
                    confirmed = self._confirm(c.host, c.target, state)
                except ProviderError as exc:
                    failed[c.host] = exc
                    continue
                results[c.host] = self._switched(c.host, c.to, c.before.value, how, state, confirmed)
        if failed:
            reasons = "; ".join(self._reason(host, exc) for host, exc in failed.items())
            done = f"; the other {len(results)} host(s) were switched and verified" if results else ""
            raise self._many_error(f"{self.label}: switch did not take effect for {len(failed)} of {len(wanted)} "
                                   f"host(s): {reasons}{done}", results, failed)
        return [results[norm_name(host)] for host, _ in items]

    def _read_each(self, zone: Hashable, hosts: list[str]) -> dict[str, TrafficState | ProviderError]:
        """`_read_many`, with a failure of the whole zone's read given to each of its hosts."""
        try:
            found = self._read_many(zone, hosts)
        except ProviderError as exc:
            return {host: exc for host in hosts}
        return {host: found.get(host) or ProviderError(f"{self.label}: {host} was not read") for host in hosts}

    def _reason(self, host: str, exc: ProviderError) -> str:
        text = str(exc).removeprefix(f"{self.label}: ").removeprefix("switch did not take effect: ")
        return text if host in text else f"{host}: {text}"

    @staticmethod
    def _many_error(message: str, results: dict, failed: dict) -> SwitchManyError:
        transient = all(isinstance(e, TransientProviderError) for e in failed.values())
        return (TransientSwitchManyError if transient else SwitchManyError)(message, results, failed)

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
        """Run `call`; a ProviderError that mentions one of `_secrets()` is raised again with it masked (the
        per-host errors of a SwitchManyError too)."""
        try:
            return call(*args)
        except ProviderError as exc:
            masked = self._masked(exc)
            if masked is exc:
                raise
            raise masked from None

    def _masked(self, exc: ProviderError) -> ProviderError:
        """`exc`, or a copy of it (same type and attributes) with every secret masked out of its message."""
        secrets = [s for s in self._secrets() if s and len(s) >= 8]  # never mask a short common word
        text = masked = str(exc)
        for secret in secrets:
            masked = masked.replace(secret, "***")
        failed = getattr(exc, "failed", None)
        inner = {host: self._masked(e) for host, e in failed.items()} if isinstance(failed, dict) else None
        if masked == text and (inner is None or all(inner[h] is failed[h] for h in inner)):
            return exc
        copy = type(exc)(masked)
        copy.__dict__.update(exc.__dict__)
        if inner is not None:
            copy.failed = inner
        return copy

    # -- hooks -------------------------------------------------------------------------------------

    @abstractmethod
    def _read(self, host: str) -> TrafficState:
        """The host's answer, normalised (records.norm_value); ProviderError when the zone or record is missing."""

    @abstractmethod
    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        """Make `host` answer `target`; return how, for the result's detail (e.g. 'in zone example.com')."""

    def _zone_key(self, host: str) -> Hashable:
        """Which write a host's change joins in `switch_many` (its DNS zone). By default every host on its own:
        no batching, `_read` and `_apply` per host. ProviderError when the host has no zone."""
        return host

    def _read_many(self, zone: Hashable, hosts: list[str]) -> dict[str, TrafficState | ProviderError]:
        """Every host's state in one zone (one listing where the API allows); a host that cannot be read maps to
        its ProviderError. By default one `_read` per host."""
        out: dict[str, TrafficState | ProviderError] = {}
        for host in hosts:
            try:
                out[host] = self._read(host)
            except ProviderError as exc:
                out[host] = exc
        return out

    def _apply_many(self, zone: Hashable, changes: list[Change]) -> str:
        """Write every change of one zone in one request (chunked only at the API's limits); return how, for the
        results' detail. Raise ProviderError when the whole write failed; set `change.error` for a host whose part
        was refused. By default one `_apply` per host."""
        hows = []
        for change in changes:
            try:
                hows.append(self._apply(change.host, change.target, change.before))
            except ProviderError as exc:
                change.error = exc
        return "; ".join(h for h in hows if h)

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
