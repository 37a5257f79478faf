"""The `operators` group's permissions in the admin, granted after every `migrate` (post_migrate), so a fresh
production install has a working console without demo data: view every model the admin shows, and the few
changes operators make by hand. Everything a service owns is read-only in the admin anyway (its actions call
the services). Grants are only ever added: permissions given to the group by hand stay."""
from __future__ import annotations

from django.contrib import admin

from cells.access import OPERATORS_GROUP

# Beyond viewing everything: (app label, model, actions) that operators do by hand.
HAND_CHANGES = [
    ("cells", "team", ("change",)),  # who is in which team (teams and cells come from the policy)
    ("cells", "sandboxobject", ("add", "change", "delete")),  # the sandbox's drill knobs
    ("dr", "sandboxdatabase", ("add", "change", "delete")),
    ("dr", "sandboxtrafficrecord", ("add", "change", "delete")),
    ("cells", "apitoken", ("delete",)),  # revoke a leaked token
    ("axes", "accessattempt", ("delete",)),  # unlock someone locked out after failed sign-ins
]


def operator_permissions():
    """The Permission rows operators should hold (those that exist yet: apps are migrated one by one)."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    wanted = Q(pk__in=[])
    for model, model_admin in admin.site._registry.items():
        # the model, and the rows shown inside its pages (a run's steps, an evacuation's cells): an inline shows
        # only to those who may view its model
        for shown in (model, *(inline.model for inline in model_admin.inlines)):
            opts = shown._meta
            wanted |= Q(content_type__app_label=opts.app_label, codename=f"view_{opts.model_name}")
    for app_label, model_name, actions in HAND_CHANGES:
        wanted |= Q(content_type__app_label=app_label, codename__in=[f"{a}_{model_name}" for a in actions])
    return Permission.objects.filter(wanted)


def grant_operator_permissions(sender=None, using="default", **kwargs) -> None:
    from django.contrib.auth.models import Group

    group, _ = Group.objects.using(using).get_or_create(name=OPERATORS_GROUP)
    missing = operator_permissions().using(using).exclude(group=group)
    if missing.exists():
        group.permissions.add(*missing)
