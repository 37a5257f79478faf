"""The scheduler's explanation (stored on a PlacementDecision, or fresh from a preview) as a table.

Rows in the scheduler's order of rank (accepted first, best first), then the rejected
candidates with the gate that rejected them; one column per weight with the attribute's
value, its normalised score and its contribution.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from policy.schema import WEIGHT_NAMES


@dataclass
class ScoreCell:
    weight: str
    attribute: str
    value: object
    normalized: float
    contribution: float


@dataclass
class CandidateRow:
    key: str
    cloud: str
    region: str
    cluster: str
    accepted: bool
    role: str = ""  # primary | secondary | ""
    rank: int | None = None
    score: float | None = None
    scores: list[ScoreCell] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)  # [{gate, detail}] from the gates
    not_secondary: str = ""  # why it was not taken as the secondary (anti-affinity, cross-cloud rule)


@dataclass
class ExplanationTable:
    weights: list[tuple[str, float]]
    rows: list[CandidateRow]
    summary: str
    tie_break: str
    tier: str
    gates: dict
    dr_profile: str
    secondary_placement: str
    primary_reason: str
    secondary_reason: str
    ok: bool

    @property
    def gate_list(self) -> list[str]:
        """The tier's gates as short text: `requireHA`, `maxLatencyMs 25`, `allowedClouds oci, aws`."""
        out = []
        for name, value in self.gates.items():
            if value in (None, [], False):
                continue
            if value is True:
                out.append(name)
            elif isinstance(value, list):
                out.append(f"{name} {', '.join(map(str, value))}")
            else:
                out.append(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}")
        return out

    @property
    def accepted_count(self) -> int:
        return sum(r.accepted for r in self.rows)


def explanation_table(explanation: dict) -> ExplanationTable:
    stored = explanation.get("tier", {}).get("weights") or {}
    # The policy's order (latency, cost, capacity), whatever order the JSON column kept.
    weights = [(n, stored[n]) for n in WEIGHT_NAMES if n in stored] + [(n, w) for n, w in stored.items() if n not in WEIGHT_NAMES]
    primary = (explanation.get("primary") or {}).get("key")
    secondary = explanation.get("secondary") or {}
    not_secondary = {r["key"]: f"{r['rule']}: {r['detail']}" for r in secondary.get("rejected", [])}
    rows = []
    for c in explanation.get("candidates", []):
        row = CandidateRow(c["key"], c["cloud"], c["region"], c["cluster"], c["accepted"],
                           role="primary" if c["key"] == primary else "secondary" if c["key"] == secondary.get("key") else "",
                           rank=c.get("rank"), score=c.get("score"), rejections=c.get("rejections", []),
                           not_secondary=not_secondary.get(c["key"], ""))
        for name, _ in weights:
            s = (c.get("scores") or {}).get(name)
            if s:
                row.scores.append(ScoreCell(name, s["attribute"], s["value"], s["normalized"], s["contribution"]))
        rows.append(row)
    rows.sort(key=lambda r: (not r.accepted, r.rank or 0, r.key))
    tier, profile = explanation.get("tier", {}), explanation.get("drProfile", {})
    return ExplanationTable(
        weights=weights, rows=rows, summary=explanation.get("summary", ""), tie_break=explanation.get("tieBreak", ""),
        tier=tier.get("name", ""), gates=tier.get("gates", {}), dr_profile=profile.get("name", ""),
        secondary_placement=profile.get("secondaryPlacement", ""),
        primary_reason=(explanation.get("primary") or {}).get("reason", ""), secondary_reason=secondary.get("reason", ""),
        ok=bool(primary and secondary),
    )
