"""Drop the single-column index of a foreign key that a unique constraint or index of the same
table already leads with (issue #19; ``db_index=False`` on the field). The state changes as
``AlterField`` changes it; in the database only the index goes, by name: ``AlterField`` would
also drop and re-add the foreign key, re-checking every row of the table under an exclusive lock
of both tables.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('adverse_events', '0003_audit_chain_at_commit'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='toxicityflag',
                    name='subject',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='toxicity_flags', to='subjects.subject'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX "adverse_events_toxicityflag_subject_id_c41445ce"',
                    reverse_sql='CREATE INDEX "adverse_events_toxicityflag_subject_id_c41445ce" ON "adverse_events_toxicityflag" ("subject_id")',
                ),
            ],
        ),
    ]
