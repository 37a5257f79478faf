"""Compiled reads (cells.reads) give what iterating their queryset gives: every field, the select_related objects
(a missing one as None), the annotations, the deferred fields left deferred; and they refuse a query whose shape
would depend on its arguments."""
import pytest
from django.contrib.auth.models import AnonymousUser, User

from cells import presenters, services, simulator
from cells.access import viewer_id, with_viewer_access
from cells.errors import Forbidden
from cells.models import Application, CellEnvironment, Delivery, MySQLClaim, ReplicationClaim, SandboxObject
from cells.reads import CompiledRead
from dr import presenters as dr_presenters
from dr import services as dr_services
from dr.models import FailoverRun
from tests.dr.helpers import HOST, drive, ready_cell

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _instant_sandbox(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0


def snapshot(obj, annotations=()):
    """What an instance holds: its loaded fields, its cached related objects (recursively), the annotations."""
    if obj is None:
        return None
    deferred = obj.get_deferred_fields()
    out = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.attname not in deferred}
    out["deferred"] = sorted(deferred)
    for f in obj._meta.concrete_fields:
        if f.is_relation and f.is_cached(obj):
            out[f.name] = snapshot(getattr(obj, f.name))
    out.update({name: getattr(obj, name) for name in annotations})
    return out


def same(read, args, queryset, annotations=()):
    compiled, orm = read(*args), list(queryset)
    assert [snapshot(o, annotations) for o in compiled] == [snapshot(o, annotations) for o in orm]
    return compiled


def test_the_status_reads_give_what_their_querysets_give(dev, ops, outsider, test_policy):
    ce = ready_cell(dev, tier="C1", profile="silver")
    drive(dr_services.start_run(ops, cell="payments", environment="prod", host=HOST))
    FailoverRun.objects.create(cell_env=ce, type="drill", state="succeeded", from_side="primary", to_side="secondary",
                               rpo_target_seconds=60, rto_target_seconds=600, requested_by=None)  # a schedule's

    (repl,) = same(presenters._replication_with_ends, (ce.pk,),
                   ReplicationClaim.objects.select_related("source", "target").filter(cell_env_id=ce.pk))
    assert {repl.source.side, repl.target.side} == {"primary", "secondary"}
    same(presenters._applications, (ce.pk,), Application.objects.filter(cell_env_id=ce.pk))
    assert len(same(presenters._last_deliveries, (ce.pk,), Delivery.objects.filter(cell_env_id=ce.pk)
                    .order_by("-created_at", "-id")[:presenters.LAST_DELIVERIES])) == 5
    (run,) = same(dr_presenters._last_run, (ce.pk,), FailoverRun.objects.filter(cell_env_id=ce.pk)
                  .select_related("requested_by").only(*dr_presenters.SUMMARY_FIELDS).order_by("-requested_at", "-id")[:1])
    assert run.requested_by is None and "report" in run.get_deferred_fields()
    for user in (dev, ops, outsider):
        (row,) = same(services._read_cell_environment, ("payments", "prod", viewer_id(user)),
                      with_viewer_access(CellEnvironment.objects.select_related("cell__team", "placement"),
                                         viewer_id(user)).filter(cell__name="payments", environment="prod")[:1],
                      annotations=("viewer_is_operator", "viewer_in_team"))
        assert (row.viewer_is_operator, row.viewer_in_team) == {dev: (False, True), ops: (True, False),
                                                                outsider: (False, False)}[user]
    assert services._read_cell_environment("payments", "nonexistent", viewer_id(dev)) == []
    same(services._read_placed, (ce.cell_id, "prod"), CellEnvironment.objects.select_related("placement", "cell__team")
         .filter(cell_id=ce.cell_id, environment="prod")[:1])
    for side in ("primary", "secondary"):
        (app,) = same(services._read_application, (ce.pk, side),
                      Application.objects.filter(cell_env_id=ce.pk, side=side).order_by("pk")[:1])
        assert app.side == side
    SandboxObject.objects.create(name="payments-prod-mysql-primary", lag_seconds=3)
    (knobs,) = same(simulator._read_knobs, ("payments-prod-mysql-primary",),
                    SandboxObject.objects.filter(name="payments-prod-mysql-primary")[:1])
    assert knobs.lag_seconds == 3 and simulator._read_knobs("nothing-by-this-name") == []


def test_an_anonymous_viewer_is_no_member_and_no_operator(dev, test_policy):
    ready_cell(dev, tier="C1", profile="silver")
    with pytest.raises(Forbidden):
        services.get_cell_environment(AnonymousUser(), "payments", "prod")


def test_a_read_is_compiled_once_and_refuses_a_shape_that_depends_on_its_arguments(dev, test_policy):
    ce = ready_cell(dev, tier="C1", profile="silver")
    builds = []

    def build(ce_id):
        builds.append(ce_id)
        return MySQLClaim.objects.filter(cell_env_id=ce_id).order_by("side")

    read = CompiledRead(build, -1)
    assert [c.side for c in read(ce.pk)] == ["primary", "secondary"] and read(ce.pk + 1000) == []
    assert builds == [-1]
    with pytest.raises(ValueError, match="placeholders"):  # None is no parameter: it compiles to IS NULL
        CompiledRead(lambda side: MySQLClaim.objects.filter(side=side), None)("primary")
    with pytest.raises(TypeError):
        CompiledRead(lambda ce_id: MySQLClaim.objects.filter(cell_env_id=ce_id).values("side"), -1)(ce.pk)
    with pytest.raises(TypeError):
        CompiledRead(lambda name: User.objects.filter(username=name).prefetch_related("groups"), "<name>")("dev")
