"""`manage.py policy check [FILE] | show | whatif FILE`."""
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from policy.active import active_policy, last_error
from policy.loader import PolicyError, load_policy_file


class Command(BaseCommand):
    help = "Validate a policy file, show the active policy, or preview a candidate's effect on existing placements."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="validate a policy file (default: the active file)")
        check.add_argument("file", nargs="?")
        sub.add_parser("show", help="print the active policy version")
        whatif = sub.add_parser("whatif", help="list existing placements the candidate policy would change")
        whatif.add_argument("file")
        whatif.add_argument("--json", dest="as_json", action="store_true", help="print JSON instead of text")
        whatif.add_argument("--all", action="store_true", help="also list placements that would not change")

    def handle(self, *args, action, **opts):
        return getattr(self, f"do_{action}")(**opts)

    def _load(self, path):
        try:
            return load_policy_file(path)
        except PolicyError as exc:
            for p in exc.problems:
                self.stderr.write(f"{exc.source}: {p}")
            raise CommandError(f"{len(exc.problems)} problem(s); the active policy is unchanged") from None

    def do_check(self, file=None, **_):
        policy = self._load(file or settings.IDP_POLICY_FILE)
        spec = policy.spec
        self.stdout.write(self.style.SUCCESS(
            f"OK {policy.version}: {len(spec.cells)} cells, {sum(len(c.candidates) for c in spec.cells.values())} "
            f"candidates on {len(spec.providers)} clouds, tiers {', '.join(spec.tiers)}, "
            f"DR profiles {', '.join(spec.dr_profiles)}, default traffic provider {spec.defaults.traffic_provider}"))

    def do_show(self, **_):
        policy = active_policy()
        self.stdout.write(f"active policy {policy.version}")
        self.stdout.write(f"  digest  {policy.digest}")
        self.stdout.write(f"  source  {policy.source}")
        error = last_error()
        if error:
            self.stdout.write(self.style.WARNING(f"  the file on disk is NOT active ({len(error.problems)} problem(s)):"))
            for p in error.problems:
                self.stdout.write(f"    {p}")

    def do_whatif(self, file, as_json=False, all=False, **_):
        from cells.services import whatif_policy

        candidate = self._load(file)
        rows = whatif_policy(candidate)
        changed = [r for r in rows if r["changed"]]
        if as_json:
            self.stdout.write(json.dumps({"policyVersion": candidate.version, "placements": rows}, indent=2))
            return
        self.stdout.write(f"candidate {candidate.version} vs active {active_policy().version}: "
                          f"{len(changed)} of {len(rows)} placement(s) would change (nothing is changed)")
        for r in rows if all else changed:
            mark = "CHANGE" if r["changed"] else "same  "
            proposed = r["proposed"]
            target = f"{proposed['primary']} -> {proposed['secondary']}" if proposed else "no valid placement"
            self.stdout.write(f"  {mark} {r['ref']}: {r['current']['primary']} -> {r['current']['secondary']}  =>  {target}")
            if r["changed"]:
                self.stdout.write(f"         why: {r['why']}")
