"""The XLSX writer (``exports.writers.write_xlsx``): values read back as they were given."""

import io

from openpyxl import load_workbook

from exports import writers


def _written(rows):
    buffer = io.BytesIO()
    writers.write_xlsx(buffer, title="AE listing", header=("Term", "Grade", "Note"),
                       row_chunks=[rows[:1], rows[1:]])
    sheet = load_workbook(io.BytesIO(buffer.getvalue())).active
    return sheet


def test_text_stays_text_never_a_formula_or_link():
    """A verbatim term typed as ``=HYPERLINK(...)`` must not become a live formula in the
    sponsor's spreadsheet (formula injection), nor a URL a link, nor digits a number."""
    rows = [("=HYPERLINK(\"http://x\",\"y\")", 3, "http://example.org"), ("007", None, "+1")]
    sheet = _written(rows)
    cells = [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows(min_row=2)]
    assert cells == [
        [("=HYPERLINK(\"http://x\",\"y\")", "s"), (3, "n"), ("http://example.org", "s")],
        [("007", "s"), (None, "n"), ("+1", "s")],
    ]
    assert not sheet._hyperlinks


def test_header_frozen_and_sheet_named():
    sheet = _written([("Fatigue", 1, None)])
    assert sheet.title == "AE listing" and sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == ["Term", "Grade", "Note"]


def test_no_rows_still_has_the_header():
    """An export with no rows is a sheet of the header row alone (no empty data row)."""
    sheet = _written([])
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [["Term", "Grade", "Note"]]
    assert sheet.max_row == 1


def test_numbers_are_numbers_and_text_keeps_its_characters():
    rows = [("Fatigue & <pain> é中😀", 10016256, "2025-03-01"), ("Nausea", 2.5, None)]
    cells = [[(c.value, c.data_type) for c in row] for row in _written(rows).iter_rows(min_row=2)]
    assert cells == [[("Fatigue & <pain> é中😀", "s"), (10016256, "n"), ("2025-03-01", "s")],
                     [("Nausea", "s"), (2.5, "n"), (None, "n")]]
