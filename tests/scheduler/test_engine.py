"""The placement engine: gates, weights, anti-affinity, determinism and explanations. Pure: no database."""
import copy
import random

from scheduler.engine import TIE_BREAK, ExistingPlacement, PlacementRequest, Site, place, whatif
from tests.helpers import BASE, cand, make_policy

GOLD_MYSQL = ("managed-mysql", "mysql-ha", "goldengate")


def req(cell="payments", tier="C0", profile="gold", size="small", storage=50, ha=True, caps=GOLD_MYSQL, env="prod"):
    return PlacementRequest(cell, env, tier, profile, size, storage, ha, tuple(caps))


def with_candidates(*candidates, cell="payments", **tier_changes):
    doc = copy.deepcopy(BASE)
    doc["cells"][cell]["candidates"] = list(candidates)
    for key, value in tier_changes.items():
        doc["tiers"]["C0"][key] = value
    return make_policy(doc)


def verdict(decision, key):
    return next(v for v in decision.explanation["candidates"] if v["key"] == key)


def gates_of(decision, key):
    return [r["gate"] for r in verdict(decision, key)["rejections"]]


def test_c0_gold_places_primary_and_secondary_on_different_clouds():
    d = place(make_policy(), req())
    assert d.ok
    assert d.primary.key == "oci/us-ashburn-1/oke-iad-1"
    assert d.secondary.cloud != d.primary.cloud
    assert d.secondary.key == "aws/us-east-1/eks-use1-1"


def test_cordoned_candidate_is_rejected_with_its_reason():
    policy = with_candidates(
        cand("oci", "r1", "c1", latency=1, cordoned=True, cordonReason="upgrade"),
        cand("oci", "r2", "c2"), cand("aws", "r3", "c3"))
    d = place(policy, req())
    assert gates_of(d, "oci/r1/c1") == ["cordoned"]
    assert "upgrade" in verdict(d, "oci/r1/c1")["rejections"][0]["detail"]
    assert d.primary.key != "oci/r1/c1"


def test_allowed_clouds_gate():
    doc = copy.deepcopy(BASE)
    doc["tiers"]["C0"]["gates"]["allowedClouds"] = ["aws", "gcp"]
    d = place(make_policy(doc), req(caps=("managed-mysql",)))
    assert gates_of(d, "oci/us-ashburn-1/oke-iad-1") == ["allowedClouds"]
    assert {d.primary.cloud, d.secondary.cloud} == {"aws", "gcp"}


def test_capability_gate_names_what_is_missing():
    d = place(make_policy(), req())
    assert gates_of(d, "gcp/us-east4/gke-use4-1") == ["capabilities"]
    assert "lacks goldengate" in verdict(d, "gcp/us-east4/gke-use4-1")["rejections"][0]["detail"]


def test_ha_claims_need_the_ha_capability():
    policy = with_candidates(cand("azure", "r1", "c1"), cand("oci", "r2", "c2"), cand("aws", "r3", "c3"))
    d = place(policy, req(caps=("managed-mysql", "mysql-ha")))
    assert gates_of(d, "azure/r1/c1") == ["capabilities"]


def test_max_latency_gate():
    policy = with_candidates(cand("oci", "r1", "c1", latency=31), cand("oci", "r2", "c2"), cand("aws", "r3", "c3"))
    d = place(policy, req())
    assert gates_of(d, "oci/r1/c1") == ["maxLatencyMs"]
    assert "31 ms > 30 ms" in verdict(d, "oci/r1/c1")["rejections"][0]["detail"]


def test_capacity_headroom_gate():
    policy = with_candidates(cand("oci", "r1", "c1", headroom=19), cand("oci", "r2", "c2"), cand("aws", "r3", "c3"))
    assert gates_of(place(policy, req()), "oci/r1/c1") == ["minCapacityHeadroomPct"]


def test_size_must_fit_free_vcpu_counting_ha_twice():
    policy = with_candidates(cand("oci", "r1", "c1", vcpu=20), cand("oci", "r2", "c2"), cand("aws", "r3", "c3"))
    d = place(policy, req(size="large"))  # 16 vCPU x2 for HA = 32 > 20
    assert gates_of(d, "oci/r1/c1") == ["capacity"]
    assert "needs 32 vCPU" in verdict(d, "oci/r1/c1")["rejections"][0]["detail"]
    assert place(policy, req(size="large", ha=False, tier="C1", profile="gold")).explanation["candidates"][0]["accepted"]


def test_storage_must_fit():
    policy = with_candidates(cand("oci", "r1", "c1", storage=40), cand("oci", "r2", "c2"), cand("aws", "r3", "c3"))
    assert gates_of(place(policy, req(storage=50)), "oci/r1/c1") == ["capacity"]


def test_every_failing_gate_is_listed():
    policy = with_candidates(cand("oci", "r1", "c1", latency=99, headroom=1, cordoned=True), cand("oci", "r2", "c2"), cand("aws", "r3", "c3"))
    assert gates_of(place(policy, req()), "oci/r1/c1") == ["cordoned", "maxLatencyMs", "minCapacityHeadroomPct"]


def test_latency_weight_prefers_the_fastest():
    policy = with_candidates(cand("oci", "r1", "slow", latency=20), cand("oci", "r2", "fast", latency=5), cand("aws", "r3", "c3"),
                             weights={"latency": 1.0})
    assert place(policy, req()).primary.cluster == "fast"


def test_cost_weight_prefers_the_cheapest():
    policy = with_candidates(cand("oci", "r1", "dear", cost=2.0), cand("oci", "r2", "cheap", cost=0.5), cand("aws", "r3", "c3"),
                             weights={"cost": 1.0})
    assert place(policy, req()).primary.cluster == "cheap"


def test_capacity_weight_prefers_the_most_headroom():
    policy = with_candidates(cand("oci", "r1", "full", headroom=25), cand("oci", "r2", "roomy", headroom=90), cand("aws", "r3", "c3"),
                             weights={"capacity": 1.0})
    assert place(policy, req()).primary.cluster == "roomy"


def test_scores_are_explained_per_weight():
    d = place(make_policy(), req())
    v = verdict(d, "oci/us-ashburn-1/oke-iad-1")
    assert set(v["scores"]) == {"latency", "cost", "capacity"}
    assert v["scores"]["latency"] == {"attribute": "latencyMs", "value": 8, "normalized": 1.0, "weight": 0.5, "contribution": 0.5}
    assert v["score"] == round(sum(s["contribution"] for s in v["scores"].values()), 4)
    assert v["rank"] == 1
    assert d.explanation["tieBreak"] == TIE_BREAK
    assert d.explanation["policyVersion"] == d.policy_version


def test_gold_secondary_is_on_another_cloud():
    policy = with_candidates(cand("oci", "r1", "c1", latency=1), cand("oci", "r2", "c2", latency=2), cand("aws", "r3", "c3", latency=20))
    d = place(policy, req())
    assert (d.primary.key, d.secondary.key) == ("oci/r1/c1", "aws/r3/c3")
    rejected = d.explanation["secondary"]["rejected"]
    assert rejected == [{"key": "oci/r2/c2", "rule": "antiAffinity", "detail": "drProfile gold needs another cloud than oci"}]


def test_silver_secondary_is_in_another_region_and_may_share_the_cloud():
    policy = with_candidates(cand("oci", "r1", "c1", latency=1), cand("oci", "r1", "c1b", latency=2), cand("oci", "r2", "c2", latency=3),
                             cand("aws", "r3", "c3", latency=25))
    d = place(policy, req(tier="C1", profile="silver", ha=False, caps=("managed-mysql",)))
    assert (d.primary.key, d.secondary.key) == ("oci/r1/c1", "oci/r2/c2")


def test_bronze_secondary_follows_the_policy_rule_other_cluster():
    policy = with_candidates(cand("oci", "r1", "c1", cost=0.5), cand("oci", "r1", "c2", cost=0.6), cand("aws", "r3", "c3", cost=2))
    d = place(policy, req(tier="C2", profile="bronze", ha=False, caps=("managed-mysql",)))
    assert (d.primary.key, d.secondary.key) == ("oci/r1/c1", "oci/r1/c2")


def test_cross_cloud_rule_forces_the_secondary_cloud():
    doc = copy.deepcopy(BASE)
    doc["crossCloudRules"] = [{"name": "oci-to-azure", "when": {"primaryCloud": "oci", "tiers": ["C1"]}, "secondaryClouds": ["azure"]}]
    doc["cells"]["payments"]["candidates"].append(cand("azure", "eastus", "aks-1", latency=29, cost=3))
    d = place(make_policy(doc), req(tier="C1", profile="gold", ha=False, caps=("managed-mysql",)))
    assert d.primary.cloud == "oci" and d.secondary.key == "azure/eastus/aks-1"
    assert any(r["rule"] == "crossCloudRules:oci-to-azure" for r in d.explanation["secondary"]["rejected"])
    # The rule is scoped to C1: C0 is not bound by it.
    assert place(make_policy(doc), req()).secondary.cloud == "aws"


def test_primary_without_a_valid_secondary_is_skipped_and_explained():
    # The best candidate is the only one on oci; the cross-cloud rule needs azure, which is absent.
    doc = copy.deepcopy(BASE)
    doc["crossCloudRules"] = [{"name": "oci-to-azure", "when": {"primaryCloud": "oci"}, "secondaryClouds": ["azure"]}]
    doc["cells"]["payments"]["candidates"] = [cand("oci", "r1", "c1", latency=1), cand("aws", "r2", "c2", latency=5), cand("aws", "r3", "c3", latency=9)]
    d = place(make_policy(doc), req(tier="C1", profile="silver", ha=False, caps=("managed-mysql",)))
    assert (d.primary.key, d.secondary.key) == ("aws/r2/c2", "oci/r1/c1")  # the rule binds oci primaries only
    assert d.explanation["skippedPrimaries"][0]["key"] == "oci/r1/c1"


def test_no_valid_pair_returns_an_explanation_not_an_exception():
    policy = with_candidates(cand("oci", "r1", "c1"), cand("oci", "r2", "c2"))
    d = place(policy, req())
    assert not d.ok and d.primary is None
    assert "no pair satisfies drProfile gold" in d.summary
    assert all(v["accepted"] for v in d.explanation["candidates"])


def test_no_candidate_passing_the_gates():
    policy = with_candidates(cand("oci", "r1", "c1", latency=99), cand("aws", "r2", "c2", latency=99))
    d = place(policy, req())
    assert not d.ok
    assert d.summary == "no candidate of cell payments passes the gates of tier C0"


def test_same_input_same_answer_whatever_the_candidate_order():
    cands = [cand("oci", f"r{i}", f"c{i}", latency=10, cost=1.0, headroom=50) for i in range(6)] + \
            [cand("aws", f"a{i}", f"k{i}", latency=10, cost=1.0, headroom=50) for i in range(6)]
    answers = set()
    for seed in range(5):
        shuffled = list(cands)
        random.Random(seed).shuffle(shuffled)
        d = place(with_candidates(*shuffled), req())
        answers.add((d.primary.key, d.secondary.key))
    # All tie on score, latency and cost: the key order decides.
    assert answers == {("aws/a0/k0", "oci/r0/c0")}


def test_ties_on_score_are_broken_by_latency_then_cost():
    policy = with_candidates(cand("oci", "r1", "b", latency=10, cost=1.0), cand("oci", "r2", "a", latency=10, cost=1.0),
                             cand("aws", "r3", "c3", latency=10, cost=1.0), weights={"capacity": 1.0})
    assert place(policy, req()).primary.key == "aws/r3/c3"  # all equal: alphabetical key
    policy = with_candidates(cand("oci", "r1", "b", latency=9, cost=1.0), cand("oci", "r2", "a", latency=10, cost=1.0),
                             cand("aws", "r3", "c3", latency=10, cost=0.5), weights={"capacity": 1.0})
    assert place(policy, req()).primary.key == "oci/r1/b"  # lower latency wins the tie


def test_whatif_reports_moves_and_why():
    before = place(make_policy(), req())
    existing = [ExistingPlacement("payments/prod", req(), before.primary, before.secondary)]
    assert whatif(make_policy(), existing)[0]["changed"] is False

    doc = copy.deepcopy(BASE)
    doc["cells"]["payments"]["candidates"][0]["cordoned"] = True
    (row,) = whatif(make_policy(doc), existing)
    assert row["changed"] is True
    assert row["proposed"] == {"primary": "aws/us-east-1/eks-use1-1", "secondary": "oci/us-phoenix-1/oke-phx-1"}
    assert "primary oci/us-ashburn-1/oke-iad-1 rejected: cordoned" in row["why"]


def test_whatif_reports_placements_that_would_become_impossible():
    existing = [ExistingPlacement("payments/prod", req(), Site("oci", "us-ashburn-1", "oke-iad-1"), Site("aws", "us-east-1", "eks-use1-1"))]
    doc = copy.deepcopy(BASE)
    doc["tiers"]["C0"]["gates"]["maxLatencyMs"] = 1
    (row,) = whatif(make_policy(doc), existing)
    assert row["changed"] and row["proposed"] is None
    assert row["why"].startswith("no valid placement")
