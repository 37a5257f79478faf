"""The traffic provider interface: where a public host points, and switching it to a side's endpoint."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class TrafficState:
    host: str
    value: str | None  # the record's answer (IP or host name); None when the record does not exist
    detail: dict


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
