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
decided beforehand by ``edc.core.roles.scope`` (the site ids in :class:`Spec`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata

from django.db import transaction
from django.utils import timezone
from psycopg.rows import namedtuple_row

from adverse_events.models import AdverseEvent, Attribution, CtcaeTerm, ToxicityFlag
from data_management.models import ProtocolDeviation
from edc.core.replica import reporting_connection
from subjects.models import AllocationError, EligibilityAnswer, Site, Subject
from trials import protocol_schema as schema
from trials.blinding import BLINDED_PRODUCT
from trials.models import Arm, DoseLevel, EligibilityCriterion, Intervention, ProtocolVersion, Trial
from visits import qlq_c30
from visits.models import (
    Exposure,
    QlqC30Deterioration,
    QlqC30Form,
    QlqC30Score,
    TumourAssessment,
    Visit,
)

from . import adam, blinding, listing, sdtm, sdtm_domains, sdtm_tumours, terminology, trial_design
from .models import Dataset, Format

logger = logging.getLogger(__name__)
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
    "allocation_error": AllocationError._meta.db_table,
}

SDTM_DOMAINS = {
    Dataset.SDTM_AE: "AE", Dataset.SDTM_SUPPAE: "SUPPAE", Dataset.SDTM_EX: "EX",
    Dataset.SDTM_QS: "QS", Dataset.SDTM_DM: "DM", Dataset.SDTM_SV: "SV",
    Dataset.SDTM_DS: "DS", Dataset.SDTM_IE: "IE", Dataset.SDTM_TS: "TS",
    Dataset.SDTM_RS: "RS", Dataset.SDTM_TU: "TU", Dataset.SDTM_TR: "TR",
    Dataset.SDTM_TE: "TE", Dataset.SDTM_TA: "TA", Dataset.SDTM_TV: "TV", Dataset.SDTM_TI: "TI",
    Dataset.ADAM_ADQS: "ADQS", Dataset.ADAM_ADTTE: "ADTTE", Dataset.SDTM_DV: "DV",
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
    #: codelist-bound columns, checked on every record (``exports.terminology``)
    checks: tuple = ()
    #: query parameters besides the spec's (the planned visit numbers of TV)
    params: dict = field(default_factory=dict)


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


#: VISITNUM of every visit of the scoped subjects (SDTMIG 3.4: one number per planned visit,
#: the same for every subject, in schedule order). Planned visit codes take the number TV gives
#: them (``trial_design.visit_numbers``, from the protocol: the same in every export, whatever
#: its scope); a planned code the protocol does not schedule (a visit of an earlier schedule)
#: follows them, in the order of its earliest planned study day in the data, then code; an
#: unscheduled visit gets the number of the last planned visit before it plus 0.01 per
#: unscheduled visit of the subject so far (SDTMIG 3.4 section 4.4.5, unplanned visits).
VISITNUM = f"""(WITH vs AS (SELECT v.id, v.code, v.subject_id, v.kind,
      coalesce(v.actual_date, v.target_date) AS on_date,
      coalesce(v.target_date, v.actual_date) - s0.day0 AS planned_day
    FROM {{visit}} v JOIN {{subject}} s0 ON s0.id = v.subject_id
    WHERE {subject_filter('s0')}),
  planned AS (SELECT t.code, t.n FROM unnest(%(tv_codes)s::text[], %(tv_numbers)s::int[])
    AS t(code, n)),
  numbers AS (SELECT code, n FROM planned UNION ALL
    SELECT code, (SELECT coalesce(max(n), 0) FROM planned)
      + row_number() OVER (ORDER BY min(planned_day), code) AS n
    FROM vs WHERE kind <> 'unscheduled' AND code NOT IN (SELECT code FROM planned)
    GROUP BY code)
  SELECT vs.id AS visit_id, CASE WHEN vs.kind <> 'unscheduled' THEN nb.n::numeric ELSE
    coalesce((SELECT max(nb2.n) FROM vs p JOIN numbers nb2 ON nb2.code = p.code
              WHERE p.subject_id = vs.subject_id AND p.kind <> 'unscheduled'
              AND p.on_date <= vs.on_date), 0)
    + 0.01 * row_number() OVER (PARTITION BY vs.subject_id, vs.kind = 'unscheduled'
                                ORDER BY vs.on_date, vs.id) END AS visitnum
  FROM vs LEFT JOIN numbers nb ON nb.code = vs.code)"""


def _visitnum_join(visit_column: str) -> str:
    return (f" LEFT JOIN {VISITNUM.format(visit=T['visit'], subject=T['subject'])} vn "
            f"ON vn.visit_id = {visit_column}")


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
FIRST_DOSE = (f"(SELECT min(e.administered_on) FROM {T['exposure']} e "
              "WHERE e.subject_id = s.id AND e.retired_at IS NULL)")
#: Per subject and QLQ-C30 item, the form with the last non-missing answer on or before the
#: first exposure (QSLOBXFL, SDTMIG 3.4 --LOBXFL).
LOBX = ("LEFT JOIN LATERAL (SELECT " + ", ".join(
    f"(array_agg(f.id ORDER BY f.completion_date DESC, f.id DESC) FILTER (WHERE f.q{n} IS NOT "
    f"NULL))[1] AS lobx{n}" for n in range(1, 31))
    + f" FROM {T['form']} f WHERE f.subject_id = s.id AND f.retired_at IS NULL "
    f"AND f.completion_date <= {FIRST_DOSE}) lobx ON true")
#: The last date a subject is known in the trial (DM RFPENDTC).
LAST_CONTACT = (
    "greatest(CASE WHEN s.status IN ('off_study', 'screen_failure') THEN s.status_date END, "
    "s.death_date, s.consent_date, "
    f"(SELECT max(v.actual_date) FROM {T['visit']} v WHERE v.subject_id = s.id "
    "AND v.retired_at IS NULL), "
    f"(SELECT max(greatest(e.administered_on, e.stop_time::date)) FROM {T['exposure']} e "
    "WHERE e.subject_id = s.id AND e.retired_at IS NULL), "
    f"(SELECT max(greatest(a.onset_date, a.resolution_date)) FROM {T['ae']} a "
    "WHERE a.subject_id = s.id AND a.retired_at IS NULL), "
    f"(SELECT max(f.completion_date) FROM {T['form']} f WHERE f.subject_id = s.id "
    "AND f.retired_at IS NULL))")


def protocols(trial: Trial) -> list[tuple[int, schema.Protocol]]:
    """(version number, parsed protocol) of every protocol version of the trial, in order."""
    return [(v.version, v.protocol()) for v in trial.versions.order_by("version")]


def planned_visits(trial: Trial, versions: list[tuple[int, schema.Protocol]]) -> dict:
    """TV's planned visits (``trial_design.planned_visits``) for a nominal subject starting on
    the trial's start date; the trial's completion date bounds follow-up where the protocol
    gives no horizon (as for every subject's schedule, ``visits.services``)."""
    start = trial.start_date or trial.completion_date or dt.date(2000, 1, 1)
    return trial_design.planned_visits([p for _, p in versions], start, trial.completion_date)


def visit_number_params(trial: Trial) -> dict:
    """The query parameters of ``VISITNUM``: TV's planned visit codes and their numbers (none
    where the protocol cannot be scheduled: every planned code is then numbered from the
    data)."""
    try:
        numbers = trial_design.visit_numbers(planned_visits(trial, protocols(trial)))
    except (schema.ProtocolError, ValueError) as exc:
        logger.warning("trial %s: no planned visit numbers (%s)", trial.pk, exc)
        numbers = {}
    return {"tv_codes": list(numbers), "tv_numbers": list(numbers.values())}


def trial_context(trial: Trial, spec: Spec):
    arms = [blinding.ArmInfo(a.pk, a.code, a.label)
            for a in Arm.objects.filter(protocol_version__trial=trial)]
    visible = spec.unblinded or not trial.is_blinded
    interventions = [
        blinding.InterventionInfo(i.pk, i.code, i.agent, i.route, i.placebo_for,
                                  i.cell_product)
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
                  f"{_visitnum_join('ex.visit_id')} "
                  f"WHERE ex.retired_at IS NULL{date_filter(spec, 'ex.administered_on')}")
        result = Plan(
            "EX", "Exposure", (), sdtm.EX_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, ex.seq, ex.intervention_id, "
            "ex.dose_value, ex.dose_unit, ex.frequency, ex.administered_on, ex.end_date, "
            "ex.start_time, ex.stop_time, "
            "vn.visitnum, v.code AS visit, ex.interrupted, ex.interruption_reason, s.day0, "
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
        items = ", ".join(f"q.q{n}, lobx.lobx{n}" for n in range(1, sdtm.QS_ITEMS + 1))
        source = (f" FROM {_numbered(T['form'])} q "
                  f"JOIN {T['subject']} s ON s.id = q.subject_id "
                  f"JOIN {T['site']} site ON site.id = s.site_id "
                  f"JOIN {T['visit']} v ON v.id = q.visit_id "
                  f"WHERE q.retired_at IS NULL{date_filter(spec, 'q.completion_date')}")
        rows_source = source.replace(
            " WHERE q.retired_at", f"{_visitnum_join('q.visit_id')} {LOBX} WHERE q.retired_at",
            1)
        result = Plan(
            "QS", "Questionnaires", (), sdtm.QS_VARIABLES,
            f"SELECT q.id, site.code AS site_code, {SUBJID} AS subjid, q.seq, q.seq AS rank, "
            "q.completion_date, vn.visitnum, v.code AS visit, s.day0, s.treatment_stop_date, "
            f"{items}{rows_source}{ORDER}",
            f"SELECT count(*) * {sdtm.QS_ITEMS}, max(q.updated_at){source}",
            sdtm.QsMapper(study), expands=sdtm.QS_ITEMS)
    elif kind == Dataset.SDTM_DM:
        source = (f" FROM {T['subject']} s JOIN {T['site']} site ON site.id = s.site_id "
                  f"WHERE {subject_filter('s')}{date_filter(spec, 's.consent_date')}")
        mapper = sdtm.DmMapper(study, arms, spec.birth_dates)
        result = Plan(
            "DM", "Demographics", (), mapper.variables,
            f"SELECT site.code AS site_code, site.country, {SUBJID} AS subjid, s.id AS seq, "
            "s.consent_date, s.day0, s.status, s.status_date, "
            "s.birth_date, s.age_at_consent, s.sex, s.race, s.arm_id, s.death_date, "
            f"(SELECT xe.actual_arm_id FROM {T['allocation_error']} xe WHERE xe.subject_id = "
            "s.id AND xe.retired_at IS NULL AND xe.actual_arm_id IS NOT NULL ORDER BY xe.id "
            "DESC LIMIT 1) AS actual_arm_id, "
            f"ex.first_dose, ex.last_dose, {LAST_CONTACT} AS last_contact FROM "
            f"{T['subject']} s JOIN {T['site']} site ON site.id = s.site_id "
            "LEFT JOIN LATERAL (SELECT min(e.administered_on) AS first_dose, "
            f"max(e.administered_on) AS last_dose FROM {T['exposure']} e "
            "WHERE e.subject_id = s.id AND e.retired_at IS NULL) ex ON true "
            f"WHERE {subject_filter('s')}{date_filter(spec, 's.consent_date')}{ORDER}",
            f"SELECT count(*), max(s.updated_at){source}", mapper)
    elif kind in (Dataset.SDTM_SV, Dataset.SDTM_DS, Dataset.SDTM_IE, Dataset.SDTM_TS,
                  Dataset.SDTM_RS):
        result = _more_domains(kind, spec, trial, study, treatments)
    elif kind in (Dataset.SDTM_TU, Dataset.SDTM_TR):
        result = _lesion_domain(kind, spec)
    elif kind in TRIAL_DESIGN:
        result = _trial_design(kind, spec, trial, study)
    elif kind in (Dataset.ADAM_ADQS, Dataset.ADAM_ADTTE):
        result = _adam(kind, spec, study, arms)
    else:
        raise ValueError(f"{kind} is not a row export")
    if result.variables is not None:
        result.header = tuple(v.name for v in result.variables)
        result.checks = terminology.checks_for(result.name, result.header)
    result.params = {**visit_number_params(trial), **result.params}
    result.study_id = trial.registry_id
    result.originator = trial.sponsor or "trialdesk"
    result.sheet = result.sheet or result.name
    return result


def _more_domains(kind: str, spec: Spec, trial: Trial, study: sdtm.Study,
                  treatments: dict) -> Plan:
    """SV, DS, IE, TS (``exports.sdtm_domains``) and RS (``exports.sdtm_tumours``)."""
    subject_site = (f"JOIN {T['subject']} s ON s.id = x.subject_id "
                    f"JOIN {T['site']} site ON site.id = s.site_id")
    if kind == Dataset.SDTM_SV:
        source = (f" FROM {T['visit']} x {subject_site}{_visitnum_join('x.id')} "
                  f"WHERE {subject_filter('s')} AND x.retired_at IS NULL AND "
                  "(x.actual_date IS NOT NULL OR x.status IN ('missed', 'not_done'))"
                  f"{date_filter(spec, 'coalesce(x.actual_date, x.target_date)')}")
        return Plan(
            "SV", "Subject Visits", (), sdtm_domains.SV_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, vn.visitnum, x.code AS visit, "
            "x.kind, x.status, x.status_reason, x.actual_date, x.target_date, s.day0, "
            f"s.treatment_stop_date{source} ORDER BY site.code, subjid, vn.visitnum, x.id",
            f"SELECT count(*), max(x.updated_at){source}",
            lambda r: sdtm_domains.sv_record(study, r))
    if kind == Dataset.SDTM_RS:
        source = (f" FROM {_numbered(TumourAssessment._meta.db_table)} x {subject_site} "
                  f"JOIN {T['visit']} v ON v.id = x.visit_id{_visitnum_join('x.visit_id')} "
                  f"WHERE x.retired_at IS NULL{date_filter(spec, 'x.assessment_date')}")
        return Plan(
            "RS", "Disease Response", (), sdtm_tumours.RS_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, x.seq, x.criteria, "
            "x.overall_response, x.assessment_date, vn.visitnum, v.code AS visit, s.day0, "
            f"s.treatment_stop_date{source}{ORDER}",
            f"SELECT count(*), max(x.updated_at){source}",
            lambda r: sdtm_tumours.rs_record(study, r))
    if kind == Dataset.SDTM_DS:
        randomized = trial.allocation == "randomized"
        source = (f" FROM {T['subject']} s JOIN {T['site']} site ON site.id = s.site_id "
                  f"WHERE {subject_filter('s')}{date_filter(spec, 's.consent_date')}")
        events = ("1 + (s.status = 'screen_failure')::int + (s.status = 'off_study')::int "
                  "+ (s.treatment_stop_date IS NOT NULL)::int"
                  + (" + (s.enrolled_on IS NOT NULL)::int" if randomized else ""))
        return Plan(
            "DS", "Disposition", (), sdtm_domains.DS_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, s.id AS seq, s.consent_date, "
            "s.enrolled_on, s.status, s.status_date, s.status_reason, s.treatment_stop_date, "
            f"s.treatment_stop_reason, s.day0{source}{ORDER}",
            f"SELECT coalesce(sum({events}), 0), max(s.updated_at){source}",
            sdtm_domains.DsMapper(study, randomized), expands=2)
    if kind == Dataset.SDTM_IE:
        answers = (f"(SELECT a.*, c.kind, c.number, c.text, row_number() OVER "
                   "(PARTITION BY a.subject_id ORDER BY c.kind DESC, c.number) AS seq "
                   f"FROM {EligibilityAnswer._meta.db_table} a "
                   f"JOIN {EligibilityCriterion._meta.db_table} c ON c.id = a.criterion_id "
                   "WHERE a.retired_at IS NULL AND ((c.kind = 'inclusion' AND NOT a.met) "
                   "OR (c.kind = 'exclusion' AND a.met)))")
        source = (f" FROM {answers} x {subject_site} WHERE {subject_filter('s')}"
                  f"{date_filter(spec, 's.consent_date')}")
        return Plan(
            "IE", "Inclusion/Exclusion Criteria Not Met", (), sdtm_domains.IE_VARIABLES,
            f"SELECT site.code AS site_code, {SUBJID} AS subjid, x.seq, x.kind, x.number, "
            f"x.text{source}{ORDER}",
            f"SELECT count(*), max(x.updated_at){source}",
            lambda r: sdtm_domains.ie_record(study, r))
    version = trial.current_version()
    mapper = sdtm_domains.TsMapper(
        study, Arm.objects.filter(protocol_version=version).count(),
        sorted({v.name for v in treatments.values()}))
    records = sum(1 for _ in mapper(trial))
    source = f" FROM {Trial._meta.db_table} t WHERE t.id = %(trial)s"
    return Plan("TS", "Trial Summary", (), sdtm_domains.TS_VARIABLES,
                f"SELECT t.*{source}", f"SELECT {records}, max(t.updated_at){source}",
                mapper, expands=2)


TRIAL_DESIGN = (Dataset.SDTM_TE, Dataset.SDTM_TA, Dataset.SDTM_TV, Dataset.SDTM_TI)


def _lesion_domain(kind: str, spec: Spec) -> Plan:
    """TU / TR: no records, the EDC records no lesion (``exports.sdtm_tumours``); the last
    change of a tumour assessment dates the (empty) dataset."""
    name = SDTM_DOMAINS[kind]
    label, variables = sdtm_tumours.DOMAINS[name]
    source = (f" FROM {TumourAssessment._meta.db_table} x "
              f"JOIN {T['subject']} s ON s.id = x.subject_id "
              f"WHERE {subject_filter('s')} AND x.retired_at IS NULL")
    return Plan(name, label, (), variables, "SELECT 1 WHERE false",
                f"SELECT 0, max(x.updated_at){source}", lambda r: ())


def _trial_design(kind: str, spec: Spec, trial: Trial, study: sdtm.Study) -> Plan:
    """TE, TA, TV and TI from the protocol file (``exports.trial_design``), as the user may
    see them (one blinded arm for a user blinded to the trial)."""
    name = SDTM_DOMAINS[kind]
    versions = protocols(trial)
    visible = spec.unblinded or not trial.is_blinded
    if name in ("TE", "TA"):
        arms = trial_design.design(versions[-1][1], visible)
        write = trial_design.te_records if name == "TE" else trial_design.ta_records
        records = list(write(study, arms))
    elif name == "TV":
        labels = {a.code: a.label for _, p in versions for a in p.arms}
        records = list(trial_design.tv_records(study, planned_visits(trial, versions), labels,
                                               visible))
    else:
        records = list(trial_design.ti_records(study, versions))
    label, variables = trial_design.DOMAINS[name]
    source = (f" FROM {Trial._meta.db_table} t JOIN {ProtocolVersion._meta.db_table} pv "
              "ON pv.trial_id = t.id WHERE t.id = %(trial)s")
    return Plan(name, label, (), variables, f"SELECT DISTINCT t.id{source}",
                f"SELECT {len(records)}, max(greatest(t.updated_at, pv.updated_at)){source}",
                lambda r: records, expands=2)


def _adam(kind: str, spec: Spec, study: sdtm.Study, arms: dict) -> Plan:
    """ADQS and ADTTE (``exports.adam``) from the system's QLQ-C30 scores and time to
    deterioration."""
    subject_site = (f"JOIN {T['subject']} s ON s.id = x.subject_id "
                    f"JOIN {T['site']} site ON site.id = s.site_id")
    if kind == Dataset.ADAM_ADQS:
        scales = ", ".join(f'x."{c}" AS {c.lower()}' for c in qlq_c30.SCALES)
        bases = ", ".join(
            f'first_value(sc."{c}") OVER w AS base_{c.lower()}' for c in qlq_c30.SCALES)
        scored = (f"(SELECT sc.*, q.subject_id, q.visit_id, q.completion_date, "
                  f"first_value(q.id) OVER w AS base_form, "
                  f"first_value(q.completion_date) OVER w AS base_date, {bases} "
                  f"FROM {QlqC30Score._meta.db_table} sc JOIN {T['form']} q "
                  "ON q.id = sc.form_id WHERE q.retired_at IS NULL AND sc.state = 'done' "
                  "WINDOW w AS (PARTITION BY q.subject_id ORDER BY q.completion_date, q.id))")
        source = (f" FROM {scored} x {subject_site}{_visitnum_join('x.visit_id')} "
                  f"JOIN {T['visit']} v ON v.id = x.visit_id WHERE {subject_filter('s')}"
                  f"{date_filter(spec, 'x.completion_date')}")
        return Plan(
            "ADQS", adam.DATASETS["ADQS"][0], (), adam.ADQS_VARIABLES,
            f"SELECT x.form_id AS id, site.code AS site_code, {SUBJID} AS subjid, s.arm_id, "
            "x.completion_date, vn.visitnum, v.code AS visit, s.day0, x.base_form, "
            f"x.base_date, {scales}, "
            + ", ".join(f"x.base_{c.lower()}" for c in qlq_c30.SCALES)
            + f"{source} ORDER BY site.code, subjid, x.completion_date, x.form_id",
            f"SELECT count(*) * {len(qlq_c30.SCALES)}, max(x.computed_at){source}",
            adam.AdqsMapper(study, arms), expands=len(qlq_c30.SCALES))
    order = {scale: n for n, scale in enumerate(qlq_c30.SCALES)}
    rank = "CASE x.scale " + " ".join(f"WHEN '{s}' THEN {n}" for s, n in order.items()) + " END"
    source = (f" FROM {QlqC30Deterioration._meta.db_table} x {subject_site} "
              f"WHERE {subject_filter('s')}")
    return Plan(
        "ADTTE", adam.DATASETS["ADTTE"][0], (), adam.ADTTE_VARIABLES,
        f"SELECT site.code AS site_code, {SUBJID} AS subjid, s.arm_id, "
        "coalesce(s.enrolled_on, s.day0, s.consent_date) AS start_date, x.scale, x.event, "
        f"x.event_date, x.censor_date, x.days{source} ORDER BY site.code, subjid, {rank}",
        f"SELECT count(*), max(x.computed_at){source}",
        lambda r: adam.adtte_record(study, arms, r))


class Source:
    """Rows of a plan from one consistent snapshot, in mapped chunks."""

    def __init__(self, plan_: Plan, spec: Spec):
        self.plan = plan_
        self.spec = spec
        self.total = 0
        self.last_modified: dt.datetime | None = None
        self._cursor = None
        self._primed: list[tuple] | None = None

    def open(self) -> Source:
        """Count and declare the cursor in one REPEATABLE READ snapshot (when not already
        inside a transaction, whose snapshot then applies).

        A ``WITH HOLD`` cursor is materialised by PostgreSQL when the transaction commits, so
        the count and the rows come from the same snapshot and the rows are then fetched
        outside any transaction (no transaction stays open during a slow download)."""
        connection = reporting_connection()  # the replica when one is configured
        connection.ensure_connection()
        raw = connection.connection
        outer = connection.in_atomic_block
        params = {**self.spec.params, **self.plan.params}
        with transaction.atomic(using=connection.alias):
            if not outer:  # raw: bypass execute wrappers (pghistory would prepend a query)
                raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self.total, self.last_modified = raw.execute(self.plan.count_sql, params).fetchone()
            cursor = raw.cursor(name=f"export_{uuid.uuid4().hex}", withhold=True,
                                row_factory=namedtuple_row)
            cursor.execute(self.plan.sql, params)
            self._cursor = cursor
        return self

    def prime(self) -> Source:
        """Map and check the first batch now, so that an unmapped controlled term there
        (``terminology.UnmappedTerm``) is refused before the first byte is sent."""
        self._primed = self._next_chunk()
        return self

    def chunks(self) -> Iterator[list[tuple]]:
        """Mapped records, ``BATCH`` source rows at a time; closes the cursor at the end."""
        try:
            if self._primed is not None:
                first, self._primed = self._primed, None
                if not first:
                    return
                yield first
            while chunk := self._next_chunk():
                yield chunk
        finally:
            self.close()

    def _next_chunk(self) -> list[tuple]:
        """The next batch mapped and checked against the controlled terminology ([] at the
        end)."""
        rows = self._cursor.fetchmany(BATCH)
        mapper = self.plan.mapper
        if self.plan.expands > 1:
            out: list[tuple] = []
            for row in rows:
                out.extend(mapper(row))
        else:
            out = [mapper(row) for row in rows]
        terminology.check(out, self.plan.checks)
        return out

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
    return dataset not in (Dataset.AE_INCIDENCE, Dataset.DLT_SUMMARY, Dataset.DEFINE_XML,
                           Dataset.ODM)


def content_type(fmt: str) -> str:
    return {Format.CSV: "text/csv; charset=utf-8", Format.JSON: "application/json",
            Format.NDJSON: "application/x-ndjson", Format.XPT: "application/x-sas-xport",
            Format.XML: "application/xml", Format.PDF: "application/pdf",
            Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }[fmt]


def file_name(trial_id: str, dataset: str, fmt: str) -> str:
    name = SDTM_DOMAINS.get(dataset, dataset).lower()
    return f"{trial_id}_{name}.{fmt}"
