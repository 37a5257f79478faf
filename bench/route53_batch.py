"""Route 53 region-evacuation benchmark, against moto (no AWS account needed).

Switches N hosts (default 500) of one hosted zone from the primary's endpoint to the secondary's:
  - batched: Route53Provider.switch_many (one change batch for the zone, the zone listed in pages);
  - per host: one Route53Provider.switch() call per host (a read, a change batch and a read-back each).
Both start from a fresh zone. Reported: wall time against moto, the Route 53 API calls sent, and the
floor that Route 53's documented rate limit (5 requests per second per account) puts on the same
calls against the real service. Prints one JSON object on its last line.

    python bench/route53_batch.py [--hosts 500]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
RATE_LIMIT_PER_SECOND = 5


def run(mode: str, hosts: int) -> dict:
    import boto3
    from moto import mock_aws

    from dr.traffic.providers.route53 import Route53Provider

    with mock_aws():
        client = boto3.client("route53")
        zone = client.create_hosted_zone(Name="example.com", CallerReference=f"bench-{mode}")["HostedZone"]["Id"].rsplit("/", 1)[-1]
        names = [f"cell-{i}.prod.example.com" for i in range(hosts)]
        for start in range(0, hosts, 500):  # set-up: CREATE counts once against the 1,000 records per request
            client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
                {"Action": "CREATE", "ResourceRecordSet": {"Name": n, "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": PRIMARY}]}}
                for n in names[start:start + 500]]})
        calls: Counter = Counter()
        client.meta.events.register("before-call.route53.*", lambda model, **kw: calls.update([model.name]))
        provider = Route53Provider(client, {"example.com": zone}, wait_delay=1)
        began = time.perf_counter()
        if mode == "batched":
            results = provider.switch_many([(n, SECONDARY) for n in names])
        else:
            results = [provider.switch(n, SECONDARY) for n in names]
        seconds = time.perf_counter() - began
        sent = Counter(calls)  # a snapshot: the checks below are not part of the switch
        assert len(results) == hosts and all(r.changed for r in results)
        assert all(provider.current(n).value == SECONDARY for n in (names[0], names[-1]))
    total = sum(sent.values())
    return {"seconds": round(seconds, 3), "apiCalls": total, "changeBatches": sent["ChangeResourceRecordSets"],
            "reads": sent["ListResourceRecordSets"],
            "realRoute53FloorSeconds": round(total / RATE_LIMIT_PER_SECOND, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    args = parser.parse_args()
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    batched = run("batched", args.hosts)
    print(f"switch_many: {args.hosts} hosts in {batched['seconds']}s, {batched['apiCalls']} API calls "
          f"({batched['changeBatches']} change batch)")
    per_host = run("per-host", args.hosts)
    print(f"switch x{args.hosts}: {per_host['seconds']}s, {per_host['apiCalls']} API calls "
          f"({per_host['changeBatches']} change batches)")
    print(json.dumps({"benchmark": "route53_batch", "backend": "moto", "hosts": args.hosts, "zones": 1,
                      "switchMany": batched, "perHost": per_host,
                      "speedup": round(per_host["seconds"] / batched["seconds"], 1) if batched["seconds"] else None,
                      "rateLimitPerSecond": RATE_LIMIT_PER_SECOND}))


if __name__ == "__main__":
    main()
