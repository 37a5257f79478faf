"""`trafficProviders.<name>.rateLimit` in the policy: names from the one adapter registry, positive rates, and the
shipped policy stating the providers' published limits."""
import copy

import pytest
import yaml

from policy import adapters
from policy.loader import load_policy_file, parse_policy
from tests.helpers import policy_doc, policy_problems as problems


def with_traffic_providers(section) -> dict:
    doc = copy.deepcopy(policy_doc())
    doc["trafficProviders"] = section
    return doc


def test_the_shipped_policy_states_the_published_limits():
    spec = load_policy_file().spec
    stated = {name: (s.rate_limit.requests_per_second, s.rate_limit.burst) for name, s in spec.traffic_providers.items()}
    assert stated == adapters.TRAFFIC_RATE_LIMITS
    assert stated["route53"] == (5, 5) and stated["cloudflare"] == (4, 4)


def test_every_published_limit_names_a_traffic_adapter_of_the_registry():
    assert set(adapters.TRAFFIC_RATE_LIMITS) <= set(adapters.names("traffic"))


def test_a_policy_without_the_section_is_valid():
    assert problems(policy_doc()) == []
    assert parse_policy(yaml.safe_dump(policy_doc())).spec.traffic_providers == {}


def test_an_unknown_traffic_provider_fails_the_check_naming_the_path():
    found = problems(with_traffic_providers({"bind9": {"rateLimit": {"requestsPerSecond": 5}}}))
    assert any(p.startswith("trafficProviders.bind9: unknown traffic provider 'bind9'") for p in found), found


@pytest.mark.parametrize("limit,expected", [
    ({"requestsPerSecond": 0}, "trafficProviders.route53.rateLimit.requestsPerSecond: must be a number > 0"),
    ({"requestsPerSecond": -1}, "trafficProviders.route53.rateLimit.requestsPerSecond: must be a number > 0"),
    ({"requestsPerSecond": 5, "burst": 0}, "trafficProviders.route53.rateLimit.burst: must be a number >= 1"),
    ({"burst": 3}, "trafficProviders.route53.rateLimit.requestsPerSecond: is required"),
    ({"requestsPerSecond": 5, "perMinute": 60}, "trafficProviders.route53.rateLimit.perMinute: unknown key"),
])
def test_a_bad_rate_limit_is_refused_naming_the_field(limit, expected):
    found = problems(with_traffic_providers({"route53": {"rateLimit": limit}}))
    assert expected in found, found


def test_a_fractional_rate_and_the_self_hosted_providers_may_be_limited_too():
    doc = with_traffic_providers({"cloudflare": {"rateLimit": {"requestsPerSecond": 2.5}},
                                  "powerdns": {"rateLimit": {"requestsPerSecond": 50, "burst": 100}}})
    spec = parse_policy(yaml.safe_dump(doc)).spec
    assert spec.traffic_providers["cloudflare"].rate_limit.requests_per_second == 2.5
    assert spec.traffic_providers["cloudflare"].rate_limit.burst is None  # the limiter rounds the rate up: 3
    assert spec.traffic_providers["powerdns"].rate_limit.burst == 100
