"""The README's management commands work as a user types them in a checkout, with no environment set."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_policy_check_runs_in_a_checkout_without_any_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "IDP_"))}
    proc = subprocess.run([sys.executable, "manage.py", "policy", "check", "policy/policy.yaml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK ")
