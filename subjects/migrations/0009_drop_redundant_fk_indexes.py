"""Drop the single-column indexes of foreign keys that an index or unique constraint of the
same table already leads with (issue #19; ``db_index=False`` on the fields). One
``AlterFields``: the project state is rendered once for the migration, not once per field.
"""

import django.db.models.deletion
from django.db import migrations, models

from edc.core.migration_operations import AlterFields


class Migration(migrations.Migration):

    dependencies = [
        ('subjects', '0001_squashed_0008'),
    ]

    operations = [
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
    ]
