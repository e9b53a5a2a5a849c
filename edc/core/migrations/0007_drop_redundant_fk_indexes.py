"""Drop the single-column index of a foreign key that a unique constraint or index of the same
table already leads with (issue #19; ``db_index=False`` on the field). The state changes as
``AlterField`` changes it; in the database only the index goes, by name: ``AlterField`` would
also drop and re-add the foreign key, re-checking every row of the table under an exclusive lock
of both tables.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('edc', '0006_statistician_role'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='idempotencyrecord',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX "edc_idempotencyrecord_user_id_4896202f"',
                    reverse_sql='CREATE INDEX "edc_idempotencyrecord_user_id_4896202f" ON "edc_idempotencyrecord" ("user_id")',
                ),
            ],
        ),
    ]
