"""Adapters by role and name, as the policy names them, from the one registry (policy/adapters.py).

IDP_SANDBOX_PROVIDERS lists the provider names the sandbox plays in this deployment
("*" for all: the embedded default). Everything else gets its real adapter, or a
clear error when none exists.
"""
from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from policy.adapters import ADAPTERS, DATABASE, SANDBOX

from .errors import ProviderError
from .traffic import ratelimit


def sandboxed(name: str) -> bool:
    played = settings.IDP_SANDBOX_PROVIDERS
    return name == SANDBOX or "*" in played or name in played


def adapter(role: str, name: str):
    """The adapter playing `role` under the policy's `name` (sandboxed per IDP_SANDBOX_PROVIDERS). A traffic
    provider comes with its rate limit (the policy's `trafficProviders.<name>.rateLimit`, else its published one)."""
    table = ADAPTERS[role]
    if SANDBOX in table and sandboxed(name):
        instance = import_string(table[SANDBOX])(plays=name)
    elif name not in table:
        raise ProviderError(f"no {role} adapter '{name}' in this installation (known: {', '.join(sorted(table))}); "
                            f"set IDP_SANDBOX_PROVIDERS to let the sandbox play it")
    else:
        cls = import_string(table[name])
        instance = cls.from_settings() if hasattr(cls, "from_settings") else cls()
    if role == "traffic":
        instance.limiter = traffic_limiter(instance.name)
    return instance


def traffic_limiter(name: str):
    """The process-wide rate limiter of traffic provider `name` (the sandbox's own under `sandbox`: it has no
    cloud's limit to respect unless the policy gives it one)."""
    from policy.active import active_policy

    try:
        spec = active_policy().spec
    except Exception:  # noqa: BLE001 - no readable policy here (e.g. no database yet): the published limits hold
        spec = None
    return ratelimit.limiter(name, ratelimit.rate_for(name, spec))


def database_of(policy, cell_env, side: str) -> str:
    """The database adapter of one side: its candidate's `database`, else its cloud's (providers.<cloud>.database)."""
    site = cell_env.placement.site(side)
    cell = policy.spec.cells.get(cell_env.cell.name)
    for cand in cell.candidates if cell else ():
        if (cand.cloud, cand.region, cand.cluster) == (site["cloud"], site["region"], site["cluster"]) and cand.database:
            return cand.database
    provider = policy.spec.providers.get(site["cloud"])
    if provider is None:
        raise ProviderError(f"{cell_env}: the {side} side runs on {site['cloud']}, which the active policy no longer lists")
    return provider.database


def data_adapter(policy, cell_env, role: str, name: str, side: str):
    """A data-role adapter (probe, fence, promoter) for an operation on `side`'s database; the policy's
    `database` means the side's own database adapter."""
    return adapter(role, database_of(policy, cell_env, side) if name == DATABASE else name)


def adapter_label(name: str) -> str:
    return f"{name} (played by the sandbox)" if sandboxed(name) and name != SANDBOX else name
