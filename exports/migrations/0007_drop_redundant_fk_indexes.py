"""Drop the single-column index of a foreign key that a unique constraint or index of the same
table already leads with (issue #19; ``db_index=False`` on the field). The state changes as
``AlterField`` changes it; in the database only the index goes, by name: ``AlterField`` would
also drop and re-add the foreign key, re-checking every row of the table under an exclusive lock
of both tables.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('exports', '0006_audit_chain_at_commit'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='exportrecord',
                    name='requested_by',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='exports', to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX "exports_exportrecord_requested_by_id_8140eb98"',
                    reverse_sql='CREATE INDEX "exports_exportrecord_requested_by_id_8140eb98" ON "exports_exportrecord" ("requested_by_id")',
                ),
            ],
        ),
    ]
