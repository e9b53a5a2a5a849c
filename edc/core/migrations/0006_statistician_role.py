"""Create the unblinded statistician's role group (see edc.core.roles)."""

from django.db import migrations


def create_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="statistician")


class Migration(migrations.Migration):
    dependencies = [("edc", "0005_pendingtask_started_at")]

    operations = [migrations.RunPython(create_role, migrations.RunPython.noop)]
