"""Load the NCI CTCAE v5.0 dictionary (``seeds/ctcae_v5.csv``, see seeds/CTCAE_README.md).

Idempotent: terms are keyed by MedDRA LLT code; missing terms are created in bulk, changed
ones updated in bulk, identical ones left alone, so a second load changes nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .models import CtcaeTerm

COLUMNS = (
    "meddra_code", "term", "soc", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5",
    "definition", "navigational_note",
)


@dataclass(frozen=True)
class LoadResult:
    created: int
    updated: int
    unchanged: int


def default_path() -> Path:
    return Path(settings.BASE_DIR) / "seeds" / "ctcae_v5.csv"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} != {list(COLUMNS)}")
        rows = [{key: (row[key] or "").strip() for key in COLUMNS} for row in reader]
    codes = [row["meddra_code"] for row in rows]
    if len(set(codes)) != len(codes) or not all(c.isdigit() for c in codes):
        raise ValueError(f"{path}: MedDRA codes must be unique digits")
    return rows


@transaction.atomic
def load(path: Path | None = None) -> LoadResult:
    rows = read_rows(path or default_path())
    existing = {t.meddra_code: t for t in CtcaeTerm.objects.select_for_update()}
    new, changed = [], []
    for row in rows:
        term = existing.get(row["meddra_code"])
        if term is None:
            new.append(CtcaeTerm(**row))
        elif any(getattr(term, key) != row[key] for key in COLUMNS):
            for key in COLUMNS:
                setattr(term, key, row[key])
            changed.append(term)
    CtcaeTerm.objects.bulk_create(new, batch_size=500)
    CtcaeTerm.objects.bulk_update(changed, COLUMNS[1:], batch_size=500)
    return LoadResult(len(new), len(changed), len(rows) - len(new) - len(changed))
