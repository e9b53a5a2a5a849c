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
        ('subjects', '0009_audit_chain_at_commit'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                AlterFields([
                    migrations.AlterField(
                        model_name='doseconfirmation',
                        name='trial',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='dose_confirmations', to='trials.trial'),
                    ),
                    migrations.AlterField(
                        model_name='eligibilityanswer',
                        name='subject',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='eligibility_answers', to='subjects.subject'),
                    ),
                    migrations.AlterField(
                        model_name='randomizationslot',
                        name='trial',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='slots', to='trials.trial'),
                    ),
                    migrations.AlterField(
                        model_name='site',
                        name='trial',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='sites', to='trials.trial'),
                    ),
                    migrations.AlterField(
                        model_name='subject',
                        name='trial',
                        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='subjects', to='trials.trial'),
                    ),
                ]),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX "subjects_doseconfirmation_trial_id_9bccb3fa", "subjects_eligibilityanswer_subject_id_9b70f86a", "subjects_randomizationslot_trial_id_687d9b5a", "subjects_site_trial_id_1488701a", "subjects_subject_trial_id_8f5fbb6b"',
                    reverse_sql='CREATE INDEX "subjects_doseconfirmation_trial_id_9bccb3fa" ON "subjects_doseconfirmation" ("trial_id"); CREATE INDEX "subjects_eligibilityanswer_subject_id_9b70f86a" ON "subjects_eligibilityanswer" ("subject_id"); CREATE INDEX "subjects_randomizationslot_trial_id_687d9b5a" ON "subjects_randomizationslot" ("trial_id"); CREATE INDEX "subjects_site_trial_id_1488701a" ON "subjects_site" ("trial_id"); CREATE INDEX "subjects_subject_trial_id_8f5fbb6b" ON "subjects_subject" ("trial_id")',
                ),
            ],
        ),
    ]
