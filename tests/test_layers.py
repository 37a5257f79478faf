"""Dependencies point one way (ARCHITECTURE.md rule 11): portal -> (dr, cells) -> scheduler -> policy; dr may import
cells, never the reverse; the scheduler and the policy import nothing from Django or the apps above them."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_packages(package: str) -> dict[str, set[str]]:
    out = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


@pytest.mark.parametrize("package,forbidden", [
    ("cells", {"dr", "portal"}),
    ("dr", {"portal"}),
    ("scheduler", {"cells", "dr", "portal"}),
    ("policy", {"cells", "dr", "portal", "scheduler", "django"}),
])
def test_dependencies_point_one_way(package, forbidden):
    offenders = {path: sorted(names & forbidden) for path, names in imported_packages(package).items() if names & forbidden}
    # Each app's admin.py is UI like the portal and shares its read-only admin mixins (portal.admin_mixins); the
    # scheduler's and the policy's models/apps/commands are the Django edge of those pure packages.
    edge = ("admin.py",) if package in ("cells", "dr") else ("models.py", "admin.py", "apps.py", "management", "active.py")
    offenders = {p: n for p, n in offenders.items() if not any(e in p for e in edge)}
    assert offenders == {}
