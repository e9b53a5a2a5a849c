"""Drop the single-column indexes of foreign keys that an index or unique constraint of the
same table already leads with (issue #19; ``db_index=False`` on the fields). One
``AlterFields``: the project state is rendered once for the migration, not once per field.
"""

import django.db.models.deletion
from django.db import migrations, models

from edc.core.migration_operations import AlterFields


class Migration(migrations.Migration):

    dependencies = [
        ('trials', '0001_squashed_0003'),
    ]

    operations = [
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
    ]
