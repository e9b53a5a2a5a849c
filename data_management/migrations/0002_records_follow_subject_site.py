"""Queries, verifications, signatures and locks store their subject's site (for scoping); when
a subject moves to another site they follow it, whatever path moved it (ORM, bulk update, raw
SQL): a trigger on the subject table updates them in the same statement, so the old site no
longer sees them and the new one does. Their audit rows carry the move's reason and user."""

from django.db import migrations

TABLES = ("data_management_query", "data_management_verification",
          "data_management_signature", "data_management_lock")

FORWARD = """
CREATE OR REPLACE FUNCTION dm_follow_subject_site() RETURNS trigger AS $$
BEGIN
{updates}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER dm_follow_subject_site
    AFTER UPDATE OF site_id ON subjects_subject
    FOR EACH ROW WHEN (OLD.site_id IS DISTINCT FROM NEW.site_id)
    EXECUTE FUNCTION dm_follow_subject_site();
""".format(updates="\n".join(
    f"    UPDATE {table} SET site_id = NEW.site_id\n"
    f"        WHERE subject_id = NEW.id AND site_id IS DISTINCT FROM NEW.site_id;"
    for table in TABLES))

BACKWARD = """
DROP TRIGGER IF EXISTS dm_follow_subject_site ON subjects_subject;
DROP FUNCTION IF EXISTS dm_follow_subject_site();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("data_management", "0001_initial"),
        ("subjects", "0006_membership_unique_while_active"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
