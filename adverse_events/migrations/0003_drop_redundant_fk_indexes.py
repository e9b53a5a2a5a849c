"""Drop the single-column index of a foreign key that a unique constraint or index of the same
table already leads with (issue #19; ``db_index=False`` on the field).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('adverse_events', '0001_squashed_0002'),
    ]

    operations = [
        migrations.AlterField(
            model_name='toxicityflag',
            name='subject',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='toxicity_flags', to='subjects.subject'),
        ),
    ]
