"""QLQ-C30 time to deterioration: one row per subject (issue #19).

The 16 per-scale rows of a subject (``visits_qlqc30deterioration``) become one row of
``visits_qlqc30subjectdeterioration`` with the six fields of each scale (``PF2_event``,
``PF2_event_date``, ... ``PF2_computed_at``; event, days and time not null as before), so a cold
rescoring inserts (and checks the foreign key of) one row per subject instead of 16.
``visits_qlqc30deterioration`` becomes a view with the same columns, one row per subject and
scale (``QlqC30Deterioration``, unmanaged, read by the API, the admin and the ADTTE export as
before); its ``id`` is ``subject_id * 16`` + the scale's position. Existing rows are converted
(a subject without a row for every scale stops the migration: a not-null column).
"""

from functools import partial

import django.db.models.deletion
from django.db import migrations, models

SCALES = ("QL2", "PF2", "RF2", "EF", "CF", "SF", "FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI",
          "FI", "SUM")
FIELDS = {
    "event": models.BooleanField,
    "event_date": partial(models.DateField, blank=True, null=True),
    "confirm_date": partial(models.DateField, blank=True, null=True),
    "censor_date": partial(models.DateField, blank=True, null=True),
    "days": models.IntegerField,
    "computed_at": models.DateTimeField,
}
COLUMNS = [f"{scale}_{name}" for scale in SCALES for name in FIELDS]

TO_SUBJECT_ROWS = (
    "INSERT INTO visits_qlqc30subjectdeterioration (subject_id, "
    + ", ".join(f'"{c}"' for c in COLUMNS) + ") SELECT subject_id, "
    + ", ".join(f"(array_agg({name}) FILTER (WHERE scale = '{scale}'))[1]"
                for scale in SCALES for name in FIELDS)
    + " FROM visits_qlqc30deterioration GROUP BY subject_id")

PER_SCALE = (
    "SELECT d.subject_id * 16 + u.n AS id, u.scale, u.event, u.event_date, u.confirm_date, "
    "u.censor_date, u.days, u.computed_at, d.subject_id "
    "FROM visits_qlqc30subjectdeterioration d CROSS JOIN LATERAL (VALUES "
    + ", ".join(f"({n}, '{scale}'::varchar(4), "
                + ", ".join(f'd."{scale}_{name}"' for name in FIELDS) + ")"
                for n, scale in enumerate(SCALES))
    + f") u(n, scale, {', '.join(FIELDS)})")

VIEW = f"CREATE VIEW visits_qlqc30deterioration AS {PER_SCALE}"

TO_SCALE_ROWS = (f"INSERT INTO visits_qlqc30deterioration (subject_id, scale, {', '.join(FIELDS)}) "
                 f"SELECT subject_id, scale, {', '.join(FIELDS)} FROM ({PER_SCALE}) x")


def subject_deterioration() -> migrations.CreateModel:
    return migrations.CreateModel(
        name='QlqC30SubjectDeterioration',
        fields=[
            ('subject', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, primary_key=True, related_name='qlq_c30_deterioration_set', serialize=False, to='subjects.subject')),
            *((f"{scale}_{name}", field()) for scale in SCALES for name, field in FIELDS.items()),
        ],
    )


def deterioration_view() -> migrations.CreateModel:
    return migrations.CreateModel(
        name='QlqC30Deterioration',
        fields=[
            ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ('scale', models.CharField(choices=[(s, s) for s in SCALES], max_length=4)),
            *((name, field()) for name, field in FIELDS.items()),
            ('subject', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='qlq_c30_deterioration', to='subjects.subject')),
        ],
        options={
            'verbose_name': 'QLQ-C30 deterioration',
            'verbose_name_plural': 'QLQ-C30 deteriorations',
            'db_table': 'visits_qlqc30deterioration',
            'ordering': ['subject', 'scale'],
            'managed': False,
        },
    )


class Migration(migrations.Migration):

    dependencies = [
        ('subjects', '0001_squashed_0008'),
        ('visits', '0008_drop_redundant_fk_indexes'),
    ]

    operations = [
        subject_deterioration(),
        migrations.RunSQL(TO_SUBJECT_ROWS, reverse_sql=TO_SCALE_ROWS),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='QlqC30Deterioration'),
                deterioration_view(),
            ],
            database_operations=[
                migrations.DeleteModel(name='QlqC30Deterioration'),
                migrations.RunSQL(VIEW, reverse_sql="DROP VIEW visits_qlqc30deterioration"),
            ],
        ),
    ]
