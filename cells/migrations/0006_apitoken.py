"""The admin shows API tokens through this proxy, which never displays a key. Entries that the admin's action log
already holds for tokens named them by their key: they are renamed."""
from django.db import migrations


def forget_keys_in_the_admin_log(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    LogEntry = apps.get_model("admin", "LogEntry")
    token_types = ContentType.objects.filter(app_label="authtoken")
    LogEntry.objects.filter(content_type__in=token_types).update(object_repr="API token")


class Migration(migrations.Migration):

    dependencies = [
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("cells", "0005_public_host_unique"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[],
            options={"verbose_name": "API token", "proxy": True, "indexes": [], "constraints": []},
            bases=("authtoken.tokenproxy",),
        ),
        migrations.RunPython(forget_keys_in_the_admin_log, migrations.RunPython.noop),
    ]
