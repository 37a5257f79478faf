"""One live cell environment per public host, as a database constraint (it was a check-then-insert in Python,
and concurrent requests could both pass it). The host moves onto the cell environment, filled from its
applications; when earlier races left two live environments on one host, the oldest keeps it and the others
are reported (an audit event each): their next app request answers 409 until one of them changes host."""
from django.db import migrations, models


def hold_hosts(apps, schema_editor):
    CellEnvironment = apps.get_model("cells", "CellEnvironment")
    Application = apps.get_model("cells", "Application")
    AuditEvent = apps.get_model("cells", "AuditEvent")
    holders: dict[str, object] = {}
    for ce in CellEnvironment.objects.select_related("cell").order_by("created_at", "pk"):
        app = Application.objects.filter(cell_env=ce).order_by("side").first()
        if app is None or not app.public_host:
            continue
        live = ce.decommissioned_at is None
        if live and app.public_host in holders:
            holder = holders[app.public_host]
            AuditEvent.objects.create(
                action="cells.app.host_conflict", cell=ce.cell.name, environment=ce.environment,
                message=f"public host {app.public_host} is also served by {holder.cell.name}/{holder.environment} "
                        f"(older): this cell environment no longer holds it; request its app with another host",
                data={"publicHost": app.public_host, "heldBy": f"{holder.cell.name}/{holder.environment}"})
            print(f"\n  cells: {ce.cell.name}/{ce.environment} shares public host {app.public_host} with "
                  f"{holder.cell.name}/{holder.environment}; the older one keeps it (audit: cells.app.host_conflict)")
            continue
        if live:
            holders[app.public_host] = ce
        ce.public_host = app.public_host
        ce.save(update_fields=["public_host"])


class Migration(migrations.Migration):

    dependencies = [
        ("cells", "0004_compute_mode_writer_label"),
    ]

    operations = [
        migrations.AddField(
            model_name="cellenvironment",
            name="public_host",
            field=models.CharField(blank=True, max_length=253, null=True),
        ),
        migrations.RunPython(hold_hosts, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="cellenvironment",
            constraint=models.UniqueConstraint(condition=models.Q(("decommissioned_at__isnull", True)),
                                               fields=("public_host",), name="one_live_environment_per_public_host"),
        ),
    ]
