"""Who pulled which export, when, with what scope, how many rows and which SHA-256.

21 CFR 11.10(e) / ICH E6(R3): an export of clinical data is an access to be traced. Every
export, streamed or produced in the background, gets an :class:`ExportRecord` before the first
byte leaves; the record is audited (pghistory events, no delete, a reason on every change) and
carries the scope actually applied (sites, blinding, identifiers). Each download of a
background file is an append-only :class:`ExportDownload`.
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.conf import settings
from django.db import models

from edc.core.audit import ClinicalModel, audited
from edc.core.triggers import StrictProtect


class Dataset(models.TextChoices):
    AE_LISTING = "ae_listing", "AE listing"
    SDTM_AE = "sdtm_ae", "SDTM AE"
    SDTM_SUPPAE = "sdtm_suppae", "SDTM SUPPAE (DLT/TI)"
    SDTM_EX = "sdtm_ex", "SDTM EX"
    SDTM_QS = "sdtm_qs", "SDTM QS (QLQ-C30 items)"
    SDTM_DM = "sdtm_dm", "SDTM DM"
    SDTM_SV = "sdtm_sv", "SDTM SV (subject visits)"
    SDTM_DS = "sdtm_ds", "SDTM DS (disposition)"
    SDTM_IE = "sdtm_ie", "SDTM IE (criteria not met)"
    SDTM_TS = "sdtm_ts", "SDTM TS (trial summary)"
    SDTM_RS = "sdtm_rs", "SDTM RS (overall tumour response)"
    ADAM_ADQS = "adam_adqs", "ADaM ADQS (QLQ-C30 scale scores)"
    ADAM_ADTTE = "adam_adtte", "ADaM ADTTE (QLQ-C30 time to deterioration)"
    DEFINE_XML = "define_xml", "Define-XML 2.1 (metadata of every dataset)"
    ODM = "odm", "CDISC ODM 1.3.2 (whole trial)"
    SDTM_DV = "sdtm_dv", "SDTM DV (protocol deviations)"
    SDTM_TU = "sdtm_tu", "SDTM TU (tumour/lesion identification)"
    SDTM_TR = "sdtm_tr", "SDTM TR (tumour/lesion results)"
    SDTM_TE = "sdtm_te", "SDTM TE (trial elements)"
    SDTM_TA = "sdtm_ta", "SDTM TA (trial arms)"
    SDTM_TV = "sdtm_tv", "SDTM TV (trial visits)"
    SDTM_TI = "sdtm_ti", "SDTM TI (trial inclusion/exclusion criteria)"
    AE_INCIDENCE = "ae_incidence", "AE incidence by arm, SOC, term and worst grade"
    DLT_SUMMARY = "dlt_summary", "DLT/TI by dose level and cohort"
    CASEBOOK = "casebook", "Casebook PDF (a subject, or every subject of a site)"


class Format(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON (Dataset-JSON 1.1 for SDTM datasets)"
    NDJSON = "ndjson", "NDJSON (Dataset-JSON 1.1, one row per line)"
    XPT = "xpt", "SAS XPORT v5 (SDTM datasets)"
    XML = "xml", "XML (Define-XML 2.1, ODM 1.3.2)"
    XLSX = "xlsx", "XLSX"
    PDF = "pdf", "PDF (casebooks)"


SDTM_FORMATS = (Format.CSV, Format.JSON, Format.NDJSON, Format.XPT)
#: Formats each dataset is offered in (casebooks: ``exports.casebook``, requested apart).
FORMATS: dict[str, tuple[str, ...]] = {
    Dataset.AE_LISTING: (Format.CSV, Format.XLSX),
    Dataset.SDTM_AE: SDTM_FORMATS,
    Dataset.SDTM_SUPPAE: SDTM_FORMATS,
    Dataset.SDTM_EX: SDTM_FORMATS,
    Dataset.SDTM_QS: SDTM_FORMATS,
    Dataset.SDTM_DM: SDTM_FORMATS,
    Dataset.SDTM_SV: SDTM_FORMATS,
    Dataset.SDTM_DS: SDTM_FORMATS,
    Dataset.SDTM_IE: SDTM_FORMATS,
    Dataset.SDTM_TS: SDTM_FORMATS,
    Dataset.SDTM_RS: SDTM_FORMATS,
    Dataset.ADAM_ADQS: SDTM_FORMATS,
    Dataset.ADAM_ADTTE: SDTM_FORMATS,
    Dataset.DEFINE_XML: (Format.XML,),
    Dataset.ODM: (Format.XML,),
    Dataset.SDTM_DV: SDTM_FORMATS,
    Dataset.SDTM_TU: SDTM_FORMATS,
    Dataset.SDTM_TR: SDTM_FORMATS,
    Dataset.SDTM_TE: SDTM_FORMATS,
    Dataset.SDTM_TA: SDTM_FORMATS,
    Dataset.SDTM_TV: SDTM_FORMATS,
    Dataset.SDTM_TI: SDTM_FORMATS,
    Dataset.AE_INCIDENCE: (Format.JSON, Format.CSV),
    Dataset.DLT_SUMMARY: (Format.JSON, Format.CSV),
}


@audited
class ExportRecord(ClinicalModel):
    """One export: what (dataset, format, filters), for whom (scope), and what came out."""

    data_managed = False  # an access record, not CRF data

    class Mode(models.TextChoices):
        STREAM = "stream", "streamed in the response"
        BACKGROUND = "background", "file produced by a Celery task"

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        ABORTED = "aborted", "aborted (client went away)"
        REFUSED = "refused", "refused (too large to stream)"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="exports", db_index=False)
    dataset = models.CharField(max_length=20, choices=Dataset.choices)
    format = models.CharField(max_length=8, choices=Format.choices)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("subjects.Site", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+", help_text="Site filter requested, if any")
    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+",
                                help_text="The subject of a subject's casebook")
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    site_ids = models.JSONField(default=list, help_text="Sites whose rows were included")
    unblinded = models.BooleanField(default=False, help_text="True arms were shown")
    birth_dates = models.BooleanField(default=False, help_text="DM BRTHDTC was included")
    rows_total = models.PositiveIntegerField(null=True, blank=True,
                                             help_text="Rows to write (known at start)")
    row_count = models.PositiveIntegerField(default=0, help_text="Rows written so far")
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the file")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True,
                                 help_text="Under MEDIA_ROOT (background exports)")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["requested_by", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_dataset_display()} {self.format} by {self.requested_by} ({self.state})"

    @property
    def progress(self) -> float | None:
        if self.state == self.State.DONE:
            return 1.0
        if not self.rows_total:
            return None
        return min(1.0, self.row_count / self.rows_total)


@pgtrigger.register(
    StrictProtect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
)
class ExportDownload(models.Model):
    """A download of a background export's file (append-only)."""

    export = models.ForeignKey(ExportRecord, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.user} downloaded {self.export_id} at {self.at:%Y-%m-%d %H:%M}"
