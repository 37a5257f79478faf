"""Sync the policy's cell registry (cells and their owning teams) into the database."""
from __future__ import annotations

from django.db import IntegrityError, transaction

from policy.loader import Policy

from .models import Cell, Team


def sync_registry(policy: Policy) -> dict:
    """Create or update a Team and Cell row for every cell of the policy. Idempotent; when another process
    syncs the same new policy at the same moment, the loser of the race syncs again over its rows."""
    try:
        return _sync(policy)
    except IntegrityError:
        return _sync(policy)


def _sync(policy: Policy) -> dict:
    spec = policy.spec
    created = updated = 0
    with transaction.atomic():
        teams = {t.slug: t for t in Team.objects.filter(slug__in={c.team for c in spec.cells.values()})}
        for slug in {c.team for c in spec.cells.values()} - teams.keys():
            teams[slug] = Team.objects.create(slug=slug, name=slug.replace("-", " ").title())
        existing = {c.name: c for c in Cell.objects.all()}
        for name, entry in spec.cells.items():
            cell = existing.get(name)
            if cell is None:
                Cell.objects.create(name=name, team=teams[entry.team], description=entry.description)
                created += 1
            elif (cell.team_id, cell.description, cell.registered) != (teams[entry.team].id, entry.description, True):
                cell.team, cell.description, cell.registered = teams[entry.team], entry.description, True
                cell.save()
                updated += 1
        dropped = Cell.objects.filter(registered=True).exclude(name__in=spec.cells.keys()).update(registered=False)
    return {"created": created, "updated": updated, "unregistered": dropped}


def ensure_cell(policy: Policy, name: str) -> Cell:
    """The Cell row of a registered cell, syncing the registry if it is missing or stale."""
    entry = policy.spec.cells[name]
    cell = Cell.objects.select_related("team").filter(name=name).first()
    if cell is None or cell.team.slug != entry.team or not cell.registered:
        sync_registry(policy)
        cell = Cell.objects.select_related("team").get(name=name)
    return cell


def on_policy_activated(sender, policy: Policy, **kwargs) -> None:
    sync_registry(policy)
