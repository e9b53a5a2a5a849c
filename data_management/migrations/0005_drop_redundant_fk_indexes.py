"""Drop the single-column indexes of foreign keys that an index or unique constraint of the
same table already leads with (issue #19; ``db_index=False`` on the fields). One
``AlterFields``: the project state is rendered once for the migration, not once per field.
"""

import django.db.models.deletion
from django.db import migrations, models

from edc.core.migration_operations import AlterFields


class Migration(migrations.Migration):

    dependencies = [
        ('data_management', '0001_squashed_0004'),
    ]

    operations = [
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
    ]
