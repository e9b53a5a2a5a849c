"""Load validated protocol files into the database as trials and protocol versions.

A file whose digest is already loaded changes nothing (idempotent); a changed file creates
the next protocol version (an amendment). Subjects keep the version they were enrolled
under until migrated explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from edc.core.audit import change_reason

from . import protocol_schema as schema
from . import signals
from .models import Arm, DoseLevel, EligibilityCriterion, Intervention, ProtocolVersion, Trial


@dataclass(frozen=True)
class LoadResult:
    file: str
    registry_id: str
    version: int
    created: bool


def trial_identifier(protocol: schema.Protocol) -> str:
    """The registry id, or the sponsor/site identity where the trial has none."""
    return protocol.trial.registry_id or protocol.trial.short_name


def load_files(paths: Iterable[str | Path]) -> list[LoadResult]:
    """Validate every file first (all errors at once), then load them in one transaction."""
    protocols, issues = [], []
    for path in paths:
        try:
            protocols.append(schema.load_protocol(path))
        except schema.ProtocolError as exc:
            issues.extend(exc.issues)
    if issues:
        raise schema.ProtocolError(issues)
    with transaction.atomic():
        return [load(protocol) for protocol in protocols]


def load(protocol: schema.Protocol) -> LoadResult:
    identifier = trial_identifier(protocol)
    trial = Trial.objects.filter(registry_id=identifier).first()
    if trial is not None:
        existing = trial.versions.filter(digest=protocol.digest).first()
        if existing is not None:
            return LoadResult(protocol.file, identifier, existing.version, False)
    with change_reason(f"protocol file {Path(protocol.file).name} loaded"):
        trial = _save_trial(trial, identifier, protocol)
        number = (trial.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        version = ProtocolVersion.objects.create(
            trial=trial, version=number, digest=protocol.digest,
            source_file=Path(protocol.file).name, document=protocol.to_dict(),
            file_text=Path(protocol.file).read_text(encoding="utf-8"),
            source_text=(Path(protocol.file).parent / protocol.source).read_text(
                encoding="utf-8"),
            min_age_years=protocol.eligibility.min_age_years,
            max_age_years=protocol.eligibility.max_age_years,
            sex=protocol.eligibility.sex or "all",
        )
        _save_parts(version, protocol)
        signals.protocol_loaded.send(sender=Trial, trial=trial, protocol=protocol)
    return LoadResult(protocol.file, identifier, number, True)


def _save_trial(trial: Trial | None, identifier: str, protocol: schema.Protocol) -> Trial:
    t, d = protocol.trial, protocol.design
    values = {
        "registry": "ctgov" if t.registry_id else "sponsor",
        "title": t.title or t.official_title or identifier,
        "phase": t.phase or "",
        "status": t.status or "",
        "sponsor": t.sponsor or "",
        "target_enrollment": t.target_enrollment,
        "start_date": t.start_date,
        "completion_date": t.completion_date,
        "masking": "double" if d.masking == "double" else "none",
        "allocation": d.allocation,
        "design_model": d.model,
        "ctcae_version": protocol.safety.ctcae_version,
    }
    if trial is None:
        return Trial.objects.create(registry_id=identifier, **values)
    for name, value in values.items():
        setattr(trial, name, value)
    trial.save()
    return trial


def _save_parts(version: ProtocolVersion, protocol: schema.Protocol) -> None:
    arms = {}
    for index, arm in enumerate(protocol.arms, start=1):
        arms[arm.code] = Arm.objects.create(
            protocol_version=version, code=arm.code, label=arm.label, arm_type=arm.type,
            blinded_label=arm.blinded_label or "", sequence=arm.sequence or index,
            cohort_size=arm.cohort_size,
        )
    Intervention.objects.bulk_create(
        Intervention(
            protocol_version=version, code=i.code, agent=i.agent, intervention_type=i.type,
            route=i.route or "", cell_product=i.cell_product, placebo_for=i.placebo_for or "",
        )
        for i in protocol.interventions
    )
    if protocol.dose_finding is not None:
        DoseLevel.objects.bulk_create(
            DoseLevel(
                protocol_version=version, code=level.code, order=level.order,
                value=None if level.dose_value is None else Decimal(str(level.dose_value)),
                unit=level.dose_unit or "", basis=level.dose_basis or "",
                label=level.label or "",
            )
            for level in protocol.dose_finding.levels
        )
    criteria = []
    for kind in ("inclusion", "exclusion"):
        for criterion in getattr(protocol.eligibility, kind) or ():
            criteria.append(EligibilityCriterion(
                protocol_version=version, kind=kind, number=criterion.number,
                text=criterion.text,
            ))
    EligibilityCriterion.objects.bulk_create(criteria)
