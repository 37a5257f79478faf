"""Names the whole control plane shares, defined once at its lowest layer (pure Python: the scheduler, the
renderer, the models and the adapters all import from here)."""
from __future__ import annotations

import re

SIDES = ("primary", "secondary")

# A side's compute: "active" is the writer's; a standby is warm, pilot or cold (its DR profile says which).
ACTIVE = "active"
STANDBY_MODES = ("warm", "pilot", "cold")
COMPUTE_MODES = (ACTIVE, *STANDBY_MODES)

# Cell, environment and team names: lowercase DNS labels of at most 32 characters.
DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL)


def is_dns_label(name: str) -> bool:
    return bool(_DNS_LABEL.match(name))


def other_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"side={side!r}, expected one of {list(SIDES)}")
    return SIDES[1 - SIDES.index(side)]
