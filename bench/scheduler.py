"""Scheduler benchmark: decisions per second and whatif time. Prints one JSON object on its last line.

    python bench/scheduler.py [--cells 100] [--candidates-per-cell 10] [--placements 10000]

A registry of 1,000 candidates (100 cells x 10 candidates on 4 clouds) is generated
from the shipped policy's tiers and profiles; requests cycle through cells, tiers and
DR profiles. Also measures a single cell with all 1,000 candidates (worst case).
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy.loader import DEFAULT_POLICY_FILE, parse_policy  # noqa: E402
from scheduler.engine import ExistingPlacement, PlacementRequest, place, whatif  # noqa: E402

CLOUDS = ["oci", "aws", "gcp", "azure"]
CAPS = {"C0": ("managed-mysql", "mysql-ha", "goldengate"), "C1": ("managed-mysql", "mysql-replication"),
        "C2": ("managed-mysql", "object-storage")}
PROFILE = {"C0": "gold", "C1": "silver", "C2": "bronze"}


def registry(cells: int, per_cell: int, rng: random.Random) -> dict:
    out = {}
    for i in range(cells):
        cands = []
        for j in range(per_cell):
            cloud = CLOUDS[j % len(CLOUDS)]
            cands.append({"cloud": cloud, "region": f"{cloud}-region-{j % 3}", "cluster": f"{cloud}-c{i}-{j}",
                          "latencyMs": rng.randint(3, 24), "costIndex": round(rng.uniform(0.8, 1.4), 2),
                          "capacityHeadroomPct": rng.randint(25, 80), "freeVcpu": rng.choice([32, 64, 128]),
                          "maxStorageGB": 4096})
        out[f"cell-{i}"] = {"team": f"team-{i % 10}", "candidates": cands}
    return out


def build_policy(cells: dict):
    doc = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    doc["cells"] = cells
    doc["crossCloudRules"] = []
    return parse_policy(yaml.safe_dump(doc), source="bench")


def requests(names: list[str], n: int) -> list[PlacementRequest]:
    tiers = ["C0", "C1", "C2"]
    return [PlacementRequest(names[i % len(names)], "prod", tiers[i % 3], PROFILE[tiers[i % 3]], "small", 50,
                             tiers[i % 3] == "C0", CAPS[tiers[i % 3]]) for i in range(n)]


def rate(policy, reqs) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for r in reqs:
        t = time.perf_counter()
        d = place(policy, r)
        latencies.append(time.perf_counter() - t)
        assert d.ok, d.summary
    return len(reqs) / (time.perf_counter() - start), latencies


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--candidates-per-cell", type=int, default=10)
    ap.add_argument("--placements", type=int, default=10000)
    ap.add_argument("--decisions", type=int, default=20000)
    args = ap.parse_args()
    rng = random.Random(42)

    cells = registry(args.cells, args.candidates_per_cell, rng)
    policy = build_policy(cells)
    total_candidates = args.cells * args.candidates_per_cell
    reqs = requests(list(cells), args.decisions)
    rate(policy, reqs[:500])  # warm-up
    per_s, lat = rate(policy, reqs)
    print(f"registry of {total_candidates} candidates ({args.cells} cells x {args.candidates_per_cell}): "
          f"{per_s:,.0f} decisions/s, p50 {statistics.median(lat) * 1e3:.3f} ms, p99 {pct(lat, 99) * 1e3:.3f} ms")

    # Worst case: one cell whose candidate list is the whole registry.
    big = build_policy({"cell-0": {"team": "t", "candidates": [c for v in cells.values() for c in v["candidates"]]}})
    big_reqs = requests(["cell-0"], 300)
    big_rate, big_lat = rate(big, big_reqs)
    print(f"one cell with {total_candidates} candidates: {big_rate:,.0f} decisions/s, p50 {statistics.median(big_lat) * 1e3:.2f} ms")

    # whatif: 10,000 existing placements against a candidate policy that cordons a tenth of the registry.
    existing = []
    for i, r in enumerate(requests(list(cells), args.placements)):
        d = place(policy, PlacementRequest(r.cell, f"env-{i}", r.tier, r.dr_profile, r.size, r.storage_gb, r.ha,
                                           r.required_capabilities))
        existing.append(ExistingPlacement(f"{r.cell}/env-{i}", r, d.primary, d.secondary))
    changed_cells = copy.deepcopy(cells)
    for v in list(changed_cells.values())[:: 10]:
        v["candidates"][0]["cordoned"] = True
    candidate = build_policy(changed_cells)
    t = time.perf_counter()
    rows = whatif(candidate, existing)
    whatif_s = time.perf_counter() - t
    moved = sum(r["changed"] for r in rows)
    print(f"whatif over {len(existing):,} placements: {whatif_s:.2f} s ({moved:,} would move)")

    print(json.dumps({
        "benchmark": "scheduler",
        "registry_candidates": total_candidates,
        "decisions_per_s": round(per_s),
        "decision_p50_ms": round(statistics.median(lat) * 1e3, 3),
        "decision_p99_ms": round(pct(lat, 99) * 1e3, 3),
        "single_cell_1000_candidates_decisions_per_s": round(big_rate),
        "whatif_placements": len(existing),
        "whatif_seconds": round(whatif_s, 3),
        "whatif_moved": moved,
    }))


if __name__ == "__main__":
    main()
