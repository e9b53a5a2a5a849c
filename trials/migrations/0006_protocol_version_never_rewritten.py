"""A loaded protocol version is never rewritten (a trigger, #19: the parsed protocol is cached
per version id and digest). Folded into the squash
(``0001_squashed_0003`` replaces it): this file is for databases that applied the old chain."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations

import edc.core.triggers


class Migration(migrations.Migration):

    dependencies = [
        ('trials', '0005_drop_redundant_fk_indexes'),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name='protocolversion',
            trigger=pgtrigger.compiler.Trigger(name='loaded_text_immutable', sql=edc.core.triggers.StrictTriggerSql(condition='WHEN (OLD."digest" IS DISTINCT FROM (NEW."digest") OR OLD."document" IS DISTINCT FROM (NEW."document") OR OLD."file_text" IS DISTINCT FROM (NEW."file_text") OR OLD."source_file" IS DISTINCT FROM (NEW."source_file") OR OLD."source_text" IS DISTINCT FROM (NEW."source_text") OR OLD."trial_id" IS DISTINCT FROM (NEW."trial_id") OR OLD."version" IS DISTINCT FROM (NEW."version"))', func="RAISE EXCEPTION 'a loaded protocol version is never rewritten (an amendment is a new version): %', OLD.id;", hash='350b40164237839700ec9e80fa81e9642fb74ee8', operation='UPDATE', pgid='pgtrigger_loaded_text_immutable_6e4dc', table='trials_protocolversion', when='BEFORE')),
        ),
    ]
