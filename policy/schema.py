"""The policy file's schema: typed, strict, unknown keys rejected.

Pure Python (pydantic only). Field names are the YAML keys (camelCase, as in the
developer contracts); Python attributes are snake_case through aliases.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .names import DNS_LABEL, STANDBY_MODES

WEIGHT_NAMES = ("latency", "cost", "capacity")


SecondaryPlacement = Literal["other-cloud", "other-region", "other-cluster"]
ComputeMode = Literal[STANDBY_MODES]


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Size(Strict):
    vcpu: int = Field(ge=1)
    memory_gb: int = Field(ge=1, alias="memoryGB")


class Provider(Strict):
    """What a cloud offers; gates check a claim's needs against this list."""

    description: str = ""
    capabilities: list[str]
    # The failover adapter of the cloud's managed MySQL (policy/adapters.py: heatwave, rds, mysql, ...).
    database: str = Field(default="mysql", min_length=1)


class Gates(Strict):
    require_ha: bool = Field(default=False, alias="requireHA")
    allowed_clouds: list[str] | None = None
    max_latency_ms: float | None = Field(default=None, ge=0)
    min_capacity_headroom_pct: float | None = Field(default=None, ge=0, le=100)
    required_capabilities: list[str] = []


class Weights(Strict):
    latency: float = Field(default=0, ge=0)
    cost: float = Field(default=0, ge=0)
    capacity: float = Field(default=0, ge=0)


class TierDefaults(Strict):
    size: str
    storage_gb: int = Field(ge=1, alias="storageGB")
    ha: bool
    dr_profile: str
    replicas: int = Field(ge=1)


class Tier(Strict):
    description: str = ""
    gates: Gates = Gates()
    weights: Weights
    defaults: TierDefaults
    allowed_dr_profiles: list[str]
    failover_cooldown_seconds: int = Field(default=1800, ge=0)
    # In the portal, failing over or decommissioning a cell of this tier needs its name typed.
    confirm_by_name: bool = False
    # An unplanned failover of this tier needs a written reason (portal, API and CLI alike).
    unplanned_failover_needs_reason: bool = False


class DrProfile(Strict):
    description: str = ""
    rpo_seconds: int = Field(ge=0, alias="rpoSeconds")
    rto_seconds: int = Field(ge=1, alias="rtoSeconds")
    compute_mode: ComputeMode
    secondary_replicas: int = Field(default=0, ge=0)
    replication_tool: str
    secondary_placement: SecondaryPlacement


class ToolAdapters(Strict):
    """Which adapter plays each failover role for this replication tool (dr/replication, dr/fencing)."""

    probe: str = Field(min_length=1)
    fence: str = Field(min_length=1)
    promoter: str = Field(min_length=1)


class ReplicationTool(Strict):
    description: str = ""
    required_capabilities: list[str] = []
    # Non-secret identifiers the tool's manifests and adapters need (e.g. the GoldenGate deploymentId OCID).
    settings: dict[str, str] = {}
    adapters: ToolAdapters


class RuleMatch(Strict):
    primary_cloud: str
    tiers: list[str] | None = None


class CrossCloudRule(Strict):
    """Forces where a secondary may go when the primary lands on a given cloud."""

    name: str = Field(min_length=1)
    description: str = ""
    when: RuleMatch
    secondary_clouds: list[str] = Field(min_length=1)


class Candidate(Strict):
    cloud: str
    region: str = Field(min_length=1)
    cluster: str = Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", max_length=63)
    latency_ms: float = Field(ge=0)
    cost_index: float = Field(ge=0)
    capacity_headroom_pct: float = Field(ge=0, le=100)
    free_vcpu: int = Field(ge=0)
    max_storage_gb: int = Field(ge=0, alias="maxStorageGB")
    # Where the traffic provider points the cell's public host when this side serves (IP or host name).
    endpoint: str | None = Field(default=None, min_length=1)
    cordoned: bool = False
    cordon_reason: str = ""
    # This candidate's database adapter when it differs from its cloud's (e.g. `mysql`: self-managed MySQL).
    database: str | None = Field(default=None, min_length=1)


class Cell(Strict):
    team: str = Field(pattern=DNS_LABEL)
    description: str = ""
    environments: list[str] = ["prod", "staging", "dev"]
    traffic_provider: str | None = None
    # Run a scheduled drill this often (overrides failover.drillIntervalSeconds of the tier; 0: never).
    drill_interval_seconds: int | None = Field(default=None, ge=0)
    candidates: list[Candidate] = Field(min_length=2)


class ComputeSource(Strict):
    """Where the Argo CD Applications take the cell's chart from."""

    repo_url: str = Field(min_length=1, alias="repoURL")
    path: str = Field(min_length=1)
    target_revision: str = "main"


class Defaults(Strict):
    traffic_provider: str
    compute_source: ComputeSource


class ApprovalRule(Strict):
    """Runs matching these tiers and types pause for an operator's approval before the traffic switch."""

    tiers: list[str]
    types: list[Literal["failover", "switchover", "failback"]]


class StepTimeouts(Strict):
    precheck: int = Field(default=60, ge=1)
    check_lag: int = Field(default=60, ge=1)
    fence: int = Field(default=60, ge=1)
    catch_up: int = Field(default=300, ge=1)
    promote: int = Field(default=120, ge=1)
    activate_compute: int = Field(default=600, ge=1)
    switch_traffic: int = Field(default=300, ge=1)
    reprotect: int = Field(default=300, ge=1)


class Failover(Strict):
    compute_activator: str = "argocd"
    approval_before_traffic_switch: list[ApprovalRule] = []
    step_timeouts: StepTimeouts = StepTimeouts()
    max_provider_attempts: int = Field(default=5, ge=1)
    drill_interval_seconds: dict[str, int] = Field(default_factory=dict,
                                                   description="per tier: run a drill this often (0 or absent: never)")
    # The failback that completes a planned switchover is the plan's second half, not flapping: no cool-down.
    planned_failback_skips_cooldown: bool = True


class Evacuation(Strict):
    """How a region or cloud is evacuated: tier by tier (C0 first), in waves of bounded size."""

    # Tiers in the order they move; absent: the order the policy lists them (C0, C1, C2).
    tier_order: list[str] = []
    # Inside a tier: tightest RPO first ("rpo"), or the cell's name ("name").
    within_tier: Literal["rpo", "name"] = "rpo"
    # Cell environments failing over together: one GitOps commit and one DNS batch per zone for each wave.
    wave_size: int = Field(default=200, ge=1, le=5000)
    # An evacuation whose waves together take longer than this (seconds) is marked failed for what is left.
    wave_timeout_seconds: int = Field(default=900, ge=10)


class Readiness(Strict):
    """Continuous DR readiness (dr/readiness.py): how often each cell environment is evaluated, and its thresholds."""

    # Evaluate each cell environment at least this often (seconds); a change (a run finishing, a claim turning ready
    # or failed) evaluates it at once as well.
    evaluate_every_seconds: int = Field(default=300, ge=30)
    # A successful drill must be younger than the cell's drill interval (cells.<name>.drillIntervalSeconds, else
    # failover.drillIntervalSeconds of its tier); where neither schedules drills, younger than this many days.
    drill_max_age_days: int = Field(default=30, ge=1)
    # The standby site's capacity headroom (its candidate's capacityHeadroomPct) must be at least this (or the
    # tier's gates.minCapacityHeadroomPct, when higher).
    min_standby_headroom_pct: float = Field(default=20, ge=0, le=100)
    # The lag is "rising" when it grew at each of this many last samples.
    lag_trend_samples: int = Field(default=5, ge=3, le=100)


class RateLimit(Strict):
    """A token bucket: `requestsPerSecond` sustained, up to `burst` calls at once."""

    requests_per_second: float = Field(gt=0)
    burst: int | None = Field(default=None, ge=1)  # absent: requestsPerSecond rounded up


class TrafficProviderSettings(Strict):
    # Absent: the provider's published limit (policy/adapters.py TRAFFIC_RATE_LIMITS); powerdns and sandbox have none.
    rate_limit: RateLimit | None = None


class ClaimCapabilities(Strict):
    mysql: list[str] = []
    mysql_ha: list[str] = []
    app: list[str] = []


class DnsZones(Strict):
    # A zone allows itself and every name below it; {cell}, {environment} and {team} stand for the request's.
    dns_zones: list[str] = []


class PublicHosts(Strict):
    """Where apps may serve: `default` zones for every team, plus each team's own (`teams.<team>`)."""

    default: DnsZones = DnsZones()
    teams: dict[str, DnsZones] = {}


class Images(Strict):
    """Registries images may come from: a registry host (ghcr.io) or a path under it (ghcr.io/acme)."""

    allowed_registries: list[str] = Field(min_length=1)


class PolicySpec(Strict):
    version: str | None = None
    description: str = ""
    defaults: Defaults
    sizes: dict[str, Size] = Field(min_length=1)
    providers: dict[str, Provider] = Field(min_length=1)
    claim_capabilities: ClaimCapabilities
    replication_tools: dict[str, ReplicationTool] = Field(min_length=1)
    tiers: dict[str, Tier] = Field(min_length=1)
    dr_profiles: dict[str, DrProfile] = Field(min_length=1)
    cross_cloud_rules: list[CrossCloudRule] = []
    failover: Failover = Failover()
    # Per traffic provider (adapter names: policy/adapters.py): the rate limit every call to its API respects.
    traffic_providers: dict[str, TrafficProviderSettings] = {}
    evacuation: Evacuation = Evacuation()
    readiness: Readiness = Readiness()
    # Absent: any public host, any image (a policy older than these rules keeps working).
    public_hosts: PublicHosts | None = None
    images: Images | None = None
    cells: dict[str, Cell] = Field(min_length=1)
