"""Who may see and do what: one place for the UI, the API, the admin and the CLI.

Roles: a developer acts on the cells of their teams; an operator (group
`operators`) sees every cell and runs failovers; a superuser is an operator.
"""
from __future__ import annotations

from .errors import Forbidden
from .models import Cell, CellEnvironment

OPERATORS_GROUP = "operators"


def is_operator(user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_idp_is_operator", None)
    if cached is None:
        cached = user.groups.filter(name=OPERATORS_GROUP).exists()
        user._idp_is_operator = cached
    return cached


def team_ids(user) -> set[int]:
    cached = getattr(user, "_idp_team_ids", None)
    if cached is None:
        cached = set(user.teams.values_list("id", flat=True)) if user.is_authenticated else set()
        user._idp_team_ids = cached
    return cached


def can_access_cell(user, cell: Cell) -> bool:
    return is_operator(user) or cell.team_id in team_ids(user)


def require_cell_access(user, cell: Cell) -> None:
    if not can_access_cell(user, cell):
        raise Forbidden(f"cell '{cell.name}' belongs to team '{cell.team.slug}'; you are not a member")


def require_operator(user, action: str) -> None:
    if not is_operator(user):
        raise Forbidden(f"only operators may {action}")


def visible_cells(user):
    qs = Cell.objects.select_related("team")
    return qs if is_operator(user) else qs.filter(team__in=team_ids(user))


def visible_environments(user):
    qs = CellEnvironment.objects.select_related("cell__team", "placement")
    return qs if is_operator(user) else qs.filter(cell__team__in=team_ids(user))
