"""Adapters by role and name, as the policy names them. A new adapter is a module and a line here.

IDP_SANDBOX_PROVIDERS lists the provider names the sandbox plays in this deployment
("*" for all: the embedded default). Everything else gets its real adapter, or a
clear error when none exists.
"""
from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .errors import ProviderError

ADAPTERS = {
    "traffic": {
        "sandbox": "dr.traffic.providers.sandbox.SandboxTraffic",
        "powerdns": "dr.traffic.providers.powerdns.PowerDnsProvider",
        "oci-dns": "dr.traffic.providers.oci_dns.OciDnsProvider",
        "route53": "dr.traffic.providers.route53.Route53Provider",
        "cloudflare": "dr.traffic.providers.cloudflare.CloudflareProvider",
    },
    "probe": {
        "sandbox": "dr.replication.sandbox.SandboxReplication",
        "goldengate": "dr.replication.goldengate.GoldenGateProbe",
        "mysql": "dr.replication.mysql.MySQLReplication",
    },
    "promoter": {
        "sandbox": "dr.replication.sandbox.SandboxReplication",
        "mysql": "dr.replication.mysql.MySQLReplication",
    },
    "fence": {
        "sandbox": "dr.fencing.sandbox.SandboxFence",
        "mysql": "dr.fencing.mysql.MySQLFence",
    },
}


def sandboxed(name: str) -> bool:
    played = settings.IDP_SANDBOX_PROVIDERS
    return name == "sandbox" or "*" in played or name in played


def adapter(role: str, name: str):
    """The adapter playing `role` under the policy's `name` (sandboxed per IDP_SANDBOX_PROVIDERS)."""
    table = ADAPTERS[role]
    if sandboxed(name):
        return import_string(table["sandbox"])(plays=name)
    if name not in table:
        raise ProviderError(f"no {role} adapter '{name}' in this installation (known: {', '.join(sorted(table))}); "
                            f"set IDP_SANDBOX_PROVIDERS to let the sandbox play it")
    return import_string(table[name]).from_settings()


def adapter_label(name: str) -> str:
    return f"{name} (played by the sandbox)" if sandboxed(name) and name != "sandbox" else name
