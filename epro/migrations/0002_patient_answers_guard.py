"""Patient-completed QLQ-C30 answers are changed by nobody but the ePRO services.

A trigger on ``visits_qlqc30form`` refuses, whatever the path (API, admin, a query answer,
raw SQL), to insert a form as patient-completed (mode ``epro``) or to change the answers,
mode, date, subject or visit of one, unless the transaction set ``trialdesk.epro_writer``
(``epro.services.patient_writer``: the patient's submission, and a data clarification with
the patient's confirmation and a reason). Like the other protective triggers it ignores
``pgtrigger.ignore``, and the application role cannot drop or disable it.
"""

from django.db import migrations

COLUMNS = ", ".join([*(f"{{r}}.q{i}" for i in range(1, 31)),
                     "{r}.mode", "{r}.completion_date", "{r}.subject_id", "{r}.visit_id"])

SQL = f"""
CREATE OR REPLACE FUNCTION epro_guard_patient_answers() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('trialdesk.epro_writer', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' AND NEW.mode = 'epro' THEN
        RAISE EXCEPTION 'a patient-completed (ePRO) form is recorded through its link only'
            USING ERRCODE = 'check_violation', HINT = 'patient_reported';
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.mode = 'epro' OR NEW.mode = 'epro')
       AND ROW({COLUMNS.format(r="OLD")}) IS DISTINCT FROM ROW({COLUMNS.format(r="NEW")}) THEN
        RAISE EXCEPTION 'patient-completed QLQ-C30 form % is changed by a data clarification only',
            OLD.id
            USING ERRCODE = 'check_violation', HINT = 'patient_reported';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS epro_guard_patient_answers ON visits_qlqc30form;
CREATE TRIGGER epro_guard_patient_answers BEFORE INSERT OR UPDATE ON visits_qlqc30form
    FOR EACH ROW EXECUTE FUNCTION epro_guard_patient_answers();
"""

REVERSE = """
DROP TRIGGER IF EXISTS epro_guard_patient_answers ON visits_qlqc30form;
DROP FUNCTION IF EXISTS epro_guard_patient_answers();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("epro", "0001_initial"),
        ("visits", "0006_qlqc30form_mode_epro"),
    ]

    operations = [migrations.RunSQL(SQL, REVERSE)]
