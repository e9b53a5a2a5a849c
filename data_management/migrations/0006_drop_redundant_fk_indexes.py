"""Drop the single-column indexes of foreign keys that an index or unique constraint of the
same table already leads with (issue #19; ``db_index=False`` on the fields). The state changes
as ``AlterField`` changes it (in one ``AlterFields``: one render of the project state); in the
database only the indexes go, by name: ``AlterField`` would also drop and re-add each foreign
key, re-checking every row of the table under an exclusive lock of both tables.
"""

import django.db.models.deletion
from django.db import migrations, models

from edc.core.migration_operations import AlterFields


class Migration(migrations.Migration):

    dependencies = [
        ('data_management', '0005_audit_chain_at_commit'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                AlterFields([
                    migrations.AlterField(
                        model_name='protocoldeviation',
                        name='content_type',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype'),
                    ),
                    migrations.AlterField(
                        model_name='protocoldeviation',
                        name='trial',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='trials.trial'),
                    ),
                    migrations.AlterField(
                        model_name='query',
                        name='content_type',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype'),
                    ),
                    migrations.AlterField(
                        model_name='sourcedocument',
                        name='content_type',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype'),
                    ),
                    migrations.AlterField(
                        model_name='sourcedocument',
                        name='trial',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='trials.trial'),
                    ),
                    migrations.AlterField(
                        model_name='verification',
                        name='content_type',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype'),
                    ),
                ]),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX "data_management_protocoldeviation_content_type_id_2e5e7d87", "data_management_protocoldeviation_trial_id_f51322ec", "data_management_query_content_type_id_57ac9526", "data_management_sourcedocument_content_type_id_fcbe7c51", "data_management_sourcedocument_trial_id_4bae0bfc", "data_management_verification_content_type_id_26f63fbd"',
                    reverse_sql='CREATE INDEX "data_management_protocoldeviation_content_type_id_2e5e7d87" ON "data_management_protocoldeviation" ("content_type_id"); CREATE INDEX "data_management_protocoldeviation_trial_id_f51322ec" ON "data_management_protocoldeviation" ("trial_id"); CREATE INDEX "data_management_query_content_type_id_57ac9526" ON "data_management_query" ("content_type_id"); CREATE INDEX "data_management_sourcedocument_content_type_id_fcbe7c51" ON "data_management_sourcedocument" ("content_type_id"); CREATE INDEX "data_management_sourcedocument_trial_id_4bae0bfc" ON "data_management_sourcedocument" ("trial_id"); CREATE INDEX "data_management_verification_content_type_id_26f63fbd" ON "data_management_verification" ("content_type_id")',
                ),
            ],
        ),
    ]
