"""Drop the single-column indexes of foreign keys that an index or unique constraint of the
same table already leads with (issue #19; ``db_index=False`` on the fields), and key the
QLQ-C30 scores by their form (its unique index becomes the primary key; the surrogate ``id``
and its index go). One ``AlterFields``: the project state is rendered once for the fields.
"""

import django.db.models.deletion
from django.db import migrations, models

from edc.core.migration_operations import AlterFields


class Migration(migrations.Migration):

    dependencies = [
        ('visits', '0001_squashed_0006'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='qlqc30score',
            name='id',
        ),
        AlterFields([
            migrations.AlterField(
                model_name='qlqc30deterioration',
                name='subject',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='qlq_c30_deterioration', to='subjects.subject'),
            ),
            migrations.AlterField(
                model_name='qlqc30form',
                name='subject',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='qlq_c30_forms', to='subjects.subject'),
            ),
            migrations.AlterField(
                model_name='tumourassessment',
                name='visit',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='tumour_assessments', to='visits.visit'),
            ),
            migrations.AlterField(
                model_name='visit',
                name='subject',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='visits', to='subjects.subject'),
            ),
            migrations.AlterField(
                model_name='qlqc30score',
                name='form',
                field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, primary_key=True, related_name='score', serialize=False, to='visits.qlqc30form'),
            ),
        ]),
    ]
