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
        ('trials', '0004_audit_chain_at_commit'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                AlterFields([
                    migrations.AlterField(
                        model_name='arm',
                        name='protocol_version',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='arms', to='trials.protocolversion'),
                    ),
                    migrations.AlterField(
                        model_name='doselevel',
                        name='protocol_version',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='dose_levels', to='trials.protocolversion'),
                    ),
                    migrations.AlterField(
                        model_name='eligibilitycriterion',
                        name='protocol_version',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='criteria', to='trials.protocolversion'),
                    ),
                    migrations.AlterField(
                        model_name='intervention',
                        name='protocol_version',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='interventions', to='trials.protocolversion'),
                    ),
                    migrations.AlterField(
                        model_name='protocolversion',
                        name='trial',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='versions', to='trials.trial'),
                    ),
                ]),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX "trials_arm_protocol_version_id_12c54388", "trials_doselevel_protocol_version_id_c606b23e", "trials_eligibilitycriterion_protocol_version_id_edc591f4", "trials_intervention_protocol_version_id_01f29a14", "trials_protocolversion_trial_id_8b473745"',
                    reverse_sql='CREATE INDEX "trials_arm_protocol_version_id_12c54388" ON "trials_arm" ("protocol_version_id"); CREATE INDEX "trials_doselevel_protocol_version_id_c606b23e" ON "trials_doselevel" ("protocol_version_id"); CREATE INDEX "trials_eligibilitycriterion_protocol_version_id_edc591f4" ON "trials_eligibilitycriterion" ("protocol_version_id"); CREATE INDEX "trials_intervention_protocol_version_id_01f29a14" ON "trials_intervention" ("protocol_version_id"); CREATE INDEX "trials_protocolversion_trial_id_8b473745" ON "trials_protocolversion" ("trial_id")',
                ),
            ],
        ),
    ]
