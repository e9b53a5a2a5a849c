"""QLQ-C30 time to deterioration: one row per subject (issue #19).

The 16 per-scale rows of a subject (``visits_qlqc30deterioration``) become one row of
``visits_qlqc30subjectdeterioration`` whose fields are arrays in ``qlq_c30.SCALES`` order
(checked: 16 values each, no null event, days or time), so a cold rescoring inserts (and
checks the foreign key of) one row per subject instead of 16. ``visits_qlqc30deterioration``
becomes a view with the same columns, one row per subject and scale (``QlqC30Deterioration``,
unmanaged, read by the API, the admin and the ADTTE export as before); its ``id`` is
``subject_id * 16`` + the scale's position. Existing rows are converted; a subject without a
row for every scale stops the migration (the check) rather than lose one.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.lookups
from django.db import migrations, models

SCALES = "'{QL2,PF2,RF2,EF,CF,SF,FA,NV,PA,DY,SL,AP,CO,DI,FI,SUM}'::varchar(4)[]"
FIELDS = "event, event_date, confirm_date, censor_date, days, computed_at"

TO_SUBJECT_ROWS = (
    f"INSERT INTO visits_qlqc30subjectdeterioration (subject_id, {FIELDS}) "
    "SELECT t.subject_id, "
    + ", ".join(f"array_agg(t.{f} ORDER BY s.n)" for f in FIELDS.split(", "))
    + f" FROM visits_qlqc30deterioration t JOIN unnest({SCALES}) WITH ORDINALITY s(scale, n) "
    "ON s.scale = t.scale GROUP BY t.subject_id")

PER_SCALE = (
    f"SELECT d.subject_id * 16 + u.n - 1 AS id, u.scale, u.event, u.event_date, u.confirm_date, "
    f"u.censor_date, u.days, u.computed_at, d.subject_id "
    f"FROM visits_qlqc30subjectdeterioration d CROSS JOIN LATERAL unnest({SCALES}, "
    + ", ".join(f"d.{f}" for f in FIELDS.split(", "))
    + f") WITH ORDINALITY u(scale, {FIELDS}, n)")

VIEW = f"CREATE VIEW visits_qlqc30deterioration AS {PER_SCALE}"

TO_SCALE_ROWS = (f"INSERT INTO visits_qlqc30deterioration (subject_id, scale, {FIELDS}) "
                 f"SELECT subject_id, scale, {FIELDS} FROM ({PER_SCALE}) x")


class Migration(migrations.Migration):

    dependencies = [
        ('subjects', '0001_squashed_0008'),
        ('visits', '0008_drop_redundant_fk_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='QlqC30SubjectDeterioration',
            fields=[
                ('subject', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, primary_key=True, related_name='qlq_c30_deterioration_set', serialize=False, to='subjects.subject')),
                ('event', django.contrib.postgres.fields.ArrayField(base_field=models.BooleanField(), size=None)),
                ('event_date', django.contrib.postgres.fields.ArrayField(base_field=models.DateField(null=True), size=None)),
                ('confirm_date', django.contrib.postgres.fields.ArrayField(base_field=models.DateField(null=True), size=None)),
                ('censor_date', django.contrib.postgres.fields.ArrayField(base_field=models.DateField(null=True), size=None)),
                ('days', django.contrib.postgres.fields.ArrayField(base_field=models.IntegerField(), size=None)),
                ('computed_at', django.contrib.postgres.fields.ArrayField(base_field=models.DateTimeField(), size=None)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('censor_date__len', 16), ('computed_at__len', 16), ('confirm_date__len', 16), ('days__len', 16), ('event__len', 16), ('event_date__len', 16)), name='qlq_ttd_every_scale'), models.CheckConstraint(condition=models.Q(django.db.models.lookups.IsNull(models.Func(models.F('event'), models.Value(None), function='array_position', output_field=models.IntegerField()), True), django.db.models.lookups.IsNull(models.Func(models.F('days'), models.Value(None), function='array_position', output_field=models.IntegerField()), True), django.db.models.lookups.IsNull(models.Func(models.F('computed_at'), models.Value(None), function='array_position', output_field=models.IntegerField()), True)), name='qlq_ttd_values_not_null')],
            },
        ),
        migrations.RunSQL(TO_SUBJECT_ROWS, reverse_sql=TO_SCALE_ROWS),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='QlqC30Deterioration'),
                migrations.CreateModel(
                    name='QlqC30Deterioration',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scale', models.CharField(choices=[('QL2', 'QL2'), ('PF2', 'PF2'), ('RF2', 'RF2'), ('EF', 'EF'), ('CF', 'CF'), ('SF', 'SF'), ('FA', 'FA'), ('NV', 'NV'), ('PA', 'PA'), ('DY', 'DY'), ('SL', 'SL'), ('AP', 'AP'), ('CO', 'CO'), ('DI', 'DI'), ('FI', 'FI'), ('SUM', 'SUM')], max_length=4)),
                        ('event', models.BooleanField()),
                        ('event_date', models.DateField(blank=True, null=True)),
                        ('confirm_date', models.DateField(blank=True, null=True)),
                        ('censor_date', models.DateField(blank=True, null=True)),
                        ('days', models.IntegerField()),
                        ('computed_at', models.DateTimeField()),
                        ('subject', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='qlq_c30_deterioration', to='subjects.subject')),
                    ],
                    options={
                        'verbose_name': 'QLQ-C30 deterioration',
                        'verbose_name_plural': 'QLQ-C30 deteriorations',
                        'db_table': 'visits_qlqc30deterioration',
                        'ordering': ['subject', 'scale'],
                        'managed': False,
                    },
                ),
            ],
            database_operations=[
                migrations.DeleteModel(name='QlqC30Deterioration'),
                migrations.RunSQL(VIEW, reverse_sql="DROP VIEW visits_qlqc30deterioration"),
            ],
        ),
    ]
