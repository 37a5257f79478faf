"""DNS record helpers the traffic providers share."""
from __future__ import annotations

import ipaddress

ANSWER_TYPES = ("A", "AAAA", "CNAME")


def norm_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def rtype_for(value: str) -> str:
    """A side's endpoint: an IP is an A (or AAAA) record, anything else a host name: a CNAME."""
    try:
        return "A" if ipaddress.ip_address(value.strip()).version == 4 else "AAAA"
    except ValueError:
        return "CNAME"


def norm_value(rtype: str, value: str) -> str:
    if rtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return value.strip()
    return norm_name(value)
