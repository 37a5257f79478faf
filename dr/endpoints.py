"""Where each side of a cell serves traffic: the endpoint the traffic provider points the public host at."""
from __future__ import annotations

from policy.active import active_policy


def endpoint_for(cell_env, side: str) -> str:
    """The policy candidate's `endpoint`, or a name derived from the placement (reserved .invalid TLD)."""
    site = cell_env.placement.site(side)
    entry = active_policy().spec.cells.get(cell_env.cell.name)
    for cand in entry.candidates if entry else ():
        if (cand.cloud, cand.region, cand.cluster) == (site["cloud"], site["region"], site["cluster"]) and cand.endpoint:
            return cand.endpoint
    return f"{site['cluster']}.{site['region']}.{site['cloud']}.ingress.invalid"


def side_of(cell_env, value: str | None) -> str | None:
    for side in ("primary", "secondary"):
        if value == endpoint_for(cell_env, side):
            return side
    return None
