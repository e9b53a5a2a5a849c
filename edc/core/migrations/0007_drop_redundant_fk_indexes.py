"""Drop the single-column index of a foreign key that a unique constraint or index of the same
table already leads with (issue #19; ``db_index=False`` on the field).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('edc', '0001_squashed_0006'),
    ]

    operations = [
        migrations.AlterField(
            model_name='idempotencyrecord',
            name='user',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL),
        ),
    ]
