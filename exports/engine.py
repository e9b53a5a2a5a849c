"""The export engine: scoped SQL, a consistent snapshot, batched mapping, streamed output.

One code path serves the streamed responses and the Celery files:

1. :func:`plan` turns a :class:`Spec` (dataset, format, trial, the sites the user may see,
   dates, blinding, identifiers) into SQL, a row count query and a mapper
   (``exports.sdtm`` / ``exports.listing``);
2. :class:`Source` counts the rows and declares a server-side ``WITH HOLD`` cursor in one
   REPEATABLE READ transaction, so the ``records`` count of Dataset-JSON and the rows agree,
   and no transaction stays open while a slow client downloads;
3. rows are fetched ``BATCH`` at a time, mapped, encoded and hashed chunk by chunk: memory
   stays flat in the number of rows.

The SQL reads the tables directly (as ``visits.rescoring`` does) for speed; the scope is
decided beforehand by ``edc.roles.scope`` (the site ids in :class:`Spec`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata

from django.db import connection, transaction
from django.utils import timezone
from psycopg.rows import namedtuple_row

from adverse_events.models import AdverseEvent, Attribution, CtcaeTerm, ToxicityFlag
from data_management.models import ProtocolDeviation
from subjects.models import Site, Subject
from trials.blinding import BLINDED_PRODUCT
from trials.models import Arm, DoseLevel, Intervention, Trial
from visits.models import Exposure, QlqC30Form, Visit

from . import blinding, listing, sdtm
from .models import Dataset, Format

BATCH = 2000

T = {
    "ae": AdverseEvent._meta.db_table,
    "attribution": Attribution._meta.db_table,
    "term": CtcaeTerm._meta.db_table,
    "flag": ToxicityFlag._meta.db_table,
    "subject": Subject._meta.db_table,
    "site": Site._meta.db_table,
    "exposure": Exposure._meta.db_table,
    "visit": Visit._meta.db_table,
    "form": QlqC30Form._meta.db_table,
    "deviation": ProtocolDeviation._meta.db_table,
}

SDTM_DOMAINS = {
    Dataset.SDTM_AE: "AE", Dataset.SDTM_SUPPAE: "SUPPAE", Dataset.SDTM_EX: "EX",
    Dataset.SDTM_QS: "QS", Dataset.SDTM_DM: "DM", Dataset.SDTM_DV: "DV",
}


@dataclass(frozen=True)
class Spec:
    """What to export, with the scope already decided for the requesting user."""

    dataset: str
    fmt: str
    trial_id: int
    site_ids: tuple[int, ...]
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    unblinded: bool = False
    birth_dates: bool = False

    @property
    def params(self) -> dict:
        return {"trial": self.trial_id, "sites": list(self.site_ids),
                "date_from": self.date_from, "date_to": self.date_to}


@dataclass
class Plan:
    name: str  # SDTM domain or listing name
    label: str
    header: tuple[str, ...]
    variables: tuple[sdtm.Variable, ...] | None  # for Dataset-JSON
    sql: str
    count_sql: str
    mapper: Callable
    expands: int = 1  # records per source row (QS: 30)
    study_id: str = ""
    originator: str = ""
    sheet: str = ""


SUBJID = "coalesce(nullif(s.subject_number, ''), s.screening_number)"


def subject_filter(alias: str) -> str:
    return (f"{alias}.trial_id = %(trial)s AND {alias}.site_id = ANY(%(sites)s) "
            f"AND {alias}.retired_at IS NULL")


def date_filter(spec: Spec, column: str) -> str:
    sql = ""
    if spec.date_from is not None:
        sql += f" AND {column} >= %(date_from)s"
    if spec.date_to is not None:
        sql += f" AND {column} <= %(date_to)s"
    return sql


def _numbered(table: str, order: str = "id") -> str:
    """Rows of the scoped subjects with a per-subject sequence number (stable: by id, over
    every row, retired or not, so a date filter or a later retirement never renumbers)."""
    return (f"(SELECT x.*, row_number() OVER (PARTITION BY x.subject_id ORDER BY x.{order}) "
            f"AS seq FROM {table} x JOIN {T['subject']} s0 ON s0.id = x.subject_id "
            f"WHERE {subject_filter('s0')})")


def _ae_from(spec: Spec, joins: str = "") -> str:
    return (f" FROM {_numbered(T['ae'])} ae JOIN {T['subject']} s ON s.id = ae.subject_id "
            f"JOIN {T['site']} site ON site.id = s.site_id "
            f"JOIN {T['term']} term ON term.id = ae.term_id {joins} "
            f"WHERE ae.retired_at IS NULL{date_filter(spec, 'ae.onset_date')}")


AE_COLUMNS = (
    f"site.code AS site_code, {SUBJID} AS subjid, ae.seq, ae.verbatim_term, term.term, "
    "term.meddra_code, term.soc, ae.serious, ae.sae_death, ae.sae_life_threatening, "
    "ae.sae_hospitalization, ae.sae_disability, ae.sae_congenital_anomaly, "
    "ae.sae_medically_important, ae.expected, ae.action_taken, ae.outcome, ae.grade, "
    "ae.onset_date, ae.resolution_date, s.day0, s.treatment_stop_date, s.arm_id, "
    "s.dose_level_id, s.cohort, "
    f"(SELECT string_agg(at.intervention_id::text || ':' || at.level, ';' "
    f"ORDER BY at.intervention_id) FROM {T['attribution']} at "
    "WHERE at.adverse_event_id = ae.id AND at.retired_at IS NULL) AS attributions"
)
FLAGS_LATERAL = (
    "LEFT JOIN LATERAL (SELECT "
    "bool_or(coalesce(f.override, f.computed)) FILTER (WHERE f.kind = 'DLT') AS dlt, "
    "bool_or(coalesce(f.override, f.computed)) FILTER (WHERE f.kind = 'TI') AS ti "
    f"FROM {T['flag']} f WHERE f.adverse_event_id = ae.id AND f.retired_at IS NULL) fl ON true"
)
ORDER = " ORDER BY site.code, subjid, seq"


def trial_context(trial: Trial, spec: Spec):
    arms = [blinding.ArmInfo(a.pk, a.code, a.label, a.blinded_label)
            for a in Arm.objects.filter(protocol_version__trial=trial)]
    visible = spec.unblinded or not trial.is_blinded
    interventions = [
        blinding.InterventionInfo(i.pk, i.code, i.agent, i.route, i.placebo_for)
        for i in Intervention.objects.filter(protocol_version__trial=trial)]
    return (blinding.arm_views(arms, visible), blinding.treatment_views(interventions, visible))


def product_masker(trial: Trial, spec: Spec):
    """Free text (deviation terms) as the export's reader may see it: in a blinded trial
    without unblinded access every product code and name reads ``trials.blinding``'s
    ``BLINDED_PRODUCT``."""
    if spec.unblinded or not trial.is_blinded:
        return None
    names = sorted({n for pair in Intervention.objects.filter(protocol_version__trial=trial)
                    .values_list("code", "agent") for n in pair if n}, key=len, reverse=True)
    if not names:
        return None
    pattern = re.compile("|".join(re.escape(n) for n in names))
    return lambda text: pattern.sub(BLINDED_PRODUCT, text or "")


def plan(spec: Spec) -> Plan:
    """SQL, count and mapper of one export."""
    trial = Trial.objects.get(pk=spec.trial_id)
    study = sdtm.Study(trial.registry_id)
    arms, treatments = trial_context(trial, spec)
    kind = spec.dataset
    if kind == Dataset.AE_LISTING:
        dose_levels = {d.pk: str(d) for d in DoseLevel.objects.filter(
            protocol_version__trial=trial)}
        result = Plan(
            "AE listing", "Adverse event listing", listing.LABELS, None,
            f"SELECT {AE_COLUMNS}, fl.dlt, fl.ti{_ae_from(spec, FLAGS_LATERAL)}{ORDER}",
            f"SELECT count(*), max(ae.updated_at){_ae_from(spec)}",
            listing.ListingMapper(trial.registry_id, arms, dose_levels, treatments),
            sheet="AE listing")
    elif kind == Dataset.SDTM_AE:
        result = Plan("AE", "Adverse Events", (), sdtm.AE_VARIABLES,
                      f"SELECT {AE_COLUMNS}{_ae_from(spec)}{ORDER}",
                      f"SELECT count(*), max(ae.updated_at){_ae_from(spec)}",
                      sdtm.AeMapper(study))
    elif kind == Dataset.SDTM_SUPPAE:
        joins = (f"JOIN {T['flag']} f ON f.adverse_event_id = ae.id "
                 "AND f.retired_at IS NULL")
        grouped = (f"SELECT site.code AS site_code, {SUBJID} AS subjid, ae.seq, f.kind, "
                   "bool_or(coalesce(f.override, f.computed)) AS value, "
                   "bool_or(f.override IS NOT NULL) AS overridden, max(f.updated_at) AS changed"
                   f"{_ae_from(spec, joins)} GROUP BY 1, 2, 3, 4")
        result = Plan("SUPPAE", "Supplemental Qualifiers for AE", (), sdtm.SUPPAE_VARIABLES,
                      f"{grouped} ORDER BY 1, 2, 3, 4",
                      f"SELECT count(*), max(g.changed) FROM ({grouped}) g",
                      lambda r: sdtm.suppae_record(study, r))
    elif kind == Dataset.SDTM_EX:
        source = (f" FROM {_numbered(T['exposure'])} ex "
                  f"JOIN {T['subject']} s ON s.id = ex.subject_id "
                  f"JOIN {T['site']} site ON site.id = s.site_id "
                  f"LEFT JOIN {T['visit']} v ON v.id = ex.visit_id "
                  f"WHERE ex.retired_at IS NULL{date_filter(spec, 'ex.administered_on')}")
        result = Plan(
            "EX", "Exposure", (), sdtm.EX_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, ex.seq, ex.intervention_id, "
            "ex.dose_value, ex.dose_unit, ex.frequency, ex.administered_on, ex.end_date, "
            "ex.start_time, ex.stop_time, "
            "v.code AS visit, ex.interrupted, ex.interruption_reason, s.day0, "
            f"s.treatment_stop_date{source}{ORDER}",
            f"SELECT count(*), max(ex.updated_at){source}",
            sdtm.ExMapper(study, treatments))
    elif kind == Dataset.SDTM_DV:
        source = (f" FROM {_numbered(T['deviation'])} dv "
                  f"JOIN {T['subject']} s ON s.id = dv.subject_id "
                  f"JOIN {T['site']} site ON site.id = s.site_id "
                  f"WHERE dv.retired_at IS NULL{date_filter(spec, 'dv.occurred_on')}")
        result = Plan(
            "DV", "Protocol Deviations", (), sdtm.DV_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, dv.seq, dv.id, "
            "dv.description, dv.category, dv.occurred_on, s.day0, "
            f"s.treatment_stop_date{source}{ORDER}",
            f"SELECT count(*), max(dv.updated_at){source}",
            sdtm.DvMapper(study, dict(ProtocolDeviation.Category.choices),
                          product_masker(trial, spec)))
    elif kind == Dataset.SDTM_QS:
        items = ", ".join(f"q.q{n}" for n in range(1, sdtm.QS_ITEMS + 1))
        source = (f" FROM {_numbered(T['form'])} q "
                  f"JOIN {T['subject']} s ON s.id = q.subject_id "
                  f"JOIN {T['site']} site ON site.id = s.site_id "
                  f"JOIN {T['visit']} v ON v.id = q.visit_id "
                  f"WHERE q.retired_at IS NULL{date_filter(spec, 'q.completion_date')}")
        result = Plan(
            "QS", "Questionnaires", (), sdtm.QS_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, q.seq, q.seq AS rank, "
            f"q.completion_date, v.code AS visit, s.day0, s.treatment_stop_date, {items}"
            f"{source}{ORDER}",
            f"SELECT count(*) * {sdtm.QS_ITEMS}, max(q.updated_at){source}",
            sdtm.QsMapper(study), expands=sdtm.QS_ITEMS)
    elif kind == Dataset.SDTM_DM:
        birth = "s.birth_date" if spec.birth_dates else "NULL::date"
        source = (f" FROM {T['subject']} s JOIN {T['site']} site ON site.id = s.site_id "
                  f"WHERE {subject_filter('s')}{date_filter(spec, 's.consent_date')}")
        mapper = sdtm.DmMapper(study, arms, spec.birth_dates)
        result = Plan(
            "DM", "Demographics", (), mapper.variables,
            f"SELECT site.code AS site_code, site.country, {SUBJID} AS subjid, s.id AS seq, "
            "s.consent_date, s.day0, s.status, s.status_date, "
            f"{birth} AS birth_date, s.age_at_consent, s.sex, s.arm_id, s.death_date, "
            "ex.first_dose, ex.last_dose FROM "
            f"{T['subject']} s JOIN {T['site']} site ON site.id = s.site_id "
            "LEFT JOIN LATERAL (SELECT min(e.administered_on) AS first_dose, "
            f"max(e.administered_on) AS last_dose FROM {T['exposure']} e "
            "WHERE e.subject_id = s.id AND e.retired_at IS NULL) ex ON true "
            f"WHERE {subject_filter('s')}{date_filter(spec, 's.consent_date')}{ORDER}",
            f"SELECT count(*), max(s.updated_at){source}", mapper)
    else:
        raise ValueError(f"{kind} is not a row export")
    if result.variables is not None:
        result.header = tuple(v.name for v in result.variables)
    result.study_id = trial.registry_id
    result.originator = trial.sponsor or "trialdesk"
    result.sheet = result.sheet or result.name
    return result


class Source:
    """Rows of a plan from one consistent snapshot, in mapped chunks."""

    def __init__(self, plan_: Plan, spec: Spec):
        self.plan = plan_
        self.spec = spec
        self.total = 0
        self.last_modified: dt.datetime | None = None
        self._cursor = None

    def open(self) -> Source:
        """Count and declare the cursor in one REPEATABLE READ snapshot (when not already
        inside a transaction, whose snapshot then applies).

        A ``WITH HOLD`` cursor is materialised by PostgreSQL when the transaction commits, so
        the count and the rows come from the same snapshot and the rows are then fetched
        outside any transaction (no transaction stays open during a slow download)."""
        connection.ensure_connection()
        raw = connection.connection
        outer = connection.in_atomic_block
        params = self.spec.params
        with transaction.atomic():
            if not outer:  # raw: bypass execute wrappers (pghistory would prepend a query)
                raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self.total, self.last_modified = raw.execute(self.plan.count_sql, params).fetchone()
            cursor = raw.cursor(name=f"export_{uuid.uuid4().hex}", withhold=True,
                                row_factory=namedtuple_row)
            cursor.execute(self.plan.sql, params)
            self._cursor = cursor
        return self

    def chunks(self) -> Iterator[list[tuple]]:
        """Mapped records, ``BATCH`` source rows at a time; closes the cursor at the end."""
        cursor, mapper, expands = self._cursor, self.plan.mapper, self.plan.expands > 1
        try:
            while True:
                rows = cursor.fetchmany(BATCH)
                if not rows:
                    return
                if expands:
                    out: list[tuple] = []
                    for row in rows:
                        out.extend(mapper(row))
                    yield out
                else:
                    yield [mapper(row) for row in rows]
        finally:
            self.close()

    def close(self) -> None:
        if self._cursor is not None and not self._cursor.closed:
            with contextlib.suppress(Exception):  # connection gone: the server drops it
                self._cursor.close()
        self._cursor = None


def source_system() -> tuple[str, str]:
    try:
        return ("trialdesk", metadata.version("trialdesk"))
    except metadata.PackageNotFoundError:  # running from a source tree
        return ("trialdesk", "0")


def dataset_json_header(source: Source, file_oid: str) -> dict:
    p = source.plan
    return sdtm.dataset_json_header(
        domain=p.name, label=p.label, variables=p.variables, records=source.total,
        created=timezone.now(), study_oid=p.study_id, file_oid=file_oid,
        originator=p.originator, source_system=source_system(),
        db_last_modified=source.last_modified)


def is_row_export(dataset: str) -> bool:
    return dataset not in (Dataset.AE_INCIDENCE, Dataset.DLT_SUMMARY)


def content_type(fmt: str) -> str:
    return {Format.CSV: "text/csv; charset=utf-8", Format.JSON: "application/json",
            Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }[fmt]


def file_name(trial_id: str, dataset: str, fmt: str) -> str:
    name = SDTM_DOMAINS.get(dataset, dataset).lower()
    return f"{trial_id}_{name}.{fmt}"
