"""Who may see and do what: one place for the UI, the API, the admin and the CLI.

Roles: a developer acts on the cells of their teams; an operator (group
`operators`) sees every cell and runs failovers; a superuser is an operator.
"""
from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef

from .errors import Forbidden
from .models import Cell, CellEnvironment, Team

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


def viewer_id(user) -> int:
    """The id with_viewer_access takes: the user's, or 0 (no user has it) for an anonymous one."""
    return user.pk if getattr(user, "is_authenticated", False) else 0


def with_viewer_access(qs, user_id: int, cell: str = "cell"):
    """`qs` annotated with what can_access_cell asks about a user (viewer_id), answered by the same query:
    `viewer_is_operator`, and `viewer_in_team`, a member of the team owning the row's cell (`cell`: the path from
    the row to its Cell). A status poll then needs no access query of its own. Pass the row as `viewer=` below."""
    operators = Group.objects.filter(name=OPERATORS_GROUP, user=user_id)
    members = Team.members.through.objects.filter(team_id=OuterRef(f"{cell}__team_id"), user_id=user_id)
    return qs.annotate(viewer_is_operator=Exists(operators), viewer_in_team=Exists(members))


def can_access_cell(user, cell: Cell, viewer=None) -> bool:
    """`viewer`: a row of with_viewer_access(..., viewer_id(user)) whose cell is `cell`; it answers for the queries."""
    if viewer is not None:
        if getattr(user, "is_authenticated", False):
            user._idp_is_operator = viewer.viewer_is_operator  # what is_operator would query
        return is_operator(user) or viewer.viewer_in_team
    return is_operator(user) or cell.team_id in team_ids(user)


def require_cell_access(user, cell: Cell, viewer=None) -> None:
    if not can_access_cell(user, cell, viewer):
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
