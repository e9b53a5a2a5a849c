"""The edc core schema in one migration, replacing 0001_initial .. 0006_statistician_role (#19)
and the later migrations listed in ``replaces`` after them (#19, folded in).

Generated from the models' migration state, then folded like the domain apps' squashed
migrations: the models are created by one ``CreateModels`` (``edc.core.migration_operations``),
so ``migrate`` renders the project state once for the app, and the role groups of 0002 and 0006
are created by one ``RunPython``. Databases that applied the replaced migrations keep their
history; new ones run this.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from edc.core.migration_operations import CreateModels

ROLES = ("site_staff", "investigator", "monitor", "data_manager", "sponsor", "admin", "statistician")


def create_roles(apps, schema_editor):
    """The role groups of 0002_roles and 0006_statistician_role, in their order (see edc.core.roles)."""
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):

    initial = True

    replaces = [
        ('edc', '0001_initial'),
        ('edc', '0002_roles'),
        ('edc', '0003_idempotencyrecord'),
        ('edc', '0004_idempotency_claim'),
        ('edc', '0005_pendingtask_started_at'),
        ('edc', '0006_statistician_role'),
        ('edc', '0007_drop_redundant_fk_indexes'),
    ]

    # The third-party apps' migrations first (issue #19): not needed by these models, but so
    # they run while the migration state holds few models. After the project's 100 models,
    # each of their AlterField/RunPython operations re-renders the models related to
    # auth.User, i.e. most of them (about 2 s of CPU per migrate). Pinned names, not
    # __latest__: a library's later migration then just runs later, and an applied migration
    # never depends on an unapplied one. trials and accounts (the project's first models)
    # depend on this migration.
    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('admin', '0003_logentry_add_action_flag_choices'),
        ('axes', '0010_accessattemptexpiration'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('knox', '0009_extend_authtoken_field'),
        ('otp_totp', '0003_add_timestamps'),
        ('pghistory', '0007_auto_20250421_0444'),
        ('sessions', '0001_initial'),
    ]

    operations = [
        CreateModels([
            migrations.CreateModel(
                name='PendingTask',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('task_name', models.CharField(max_length=200)),
                    ('args', models.JSONField(default=list)),
                    ('state', models.CharField(choices=[('pending', 'pending (not yet accepted by the broker)'), ('queued', 'queued'), ('done', 'done'), ('failed', 'failed')], default='pending', max_length=10)),
                    ('attempts', models.PositiveIntegerField(default=0)),
                    ('last_error', models.TextField(blank=True)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('queued_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('started_at', models.DateTimeField(blank=True, help_text='A worker took it (cleared when it fails or is re-sent); with the row unlocked long after, its worker died (edc.core.outbox.requeue_pending)', null=True)),
                ],
                options={
                    'ordering': ['id'],
                    'indexes': [models.Index(fields=['state', 'created_at'], name='edc_pending_state_0a037f_idx')],
                },
            ),
            migrations.CreateModel(
                name='IdempotencyRecord',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('key', models.CharField(max_length=200)),
                    ('fingerprint', models.CharField(help_text='SHA-256 of method, path and body', max_length=64)),
                    ('status_code', models.PositiveSmallIntegerField(blank=True, help_text='Empty while in progress', null=True)),
                    ('body', models.BinaryField(default=b'')),
                    ('content_type', models.CharField(blank=True, max_length=100)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now, help_text='Claimed at')),
                    ('user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL)),
                    ('headers', models.JSONField(default=dict, help_text='Response headers replayed (ETag...)')),
                ],
                options={
                    'constraints': [models.UniqueConstraint(fields=('user', 'key'), name='idempotency_key_unique')],
                },
            ),
        ]),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
