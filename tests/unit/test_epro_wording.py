"""The licensed-wording file format (epro.wording): placeholder files in three languages load;
every problem of a broken file is named at once; no EORTC item text ships with trialdesk."""

from __future__ import annotations

from pathlib import Path

import pytest

from epro import tokens, wording

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tag, code", [("en", "en"), ("zh-Hans", "zh-hans"), ("fr", "fr")])
def test_placeholder_wording_loads_in_each_language(tag, code):
    parsed = wording.parse((DATA / f"epro_wording.{tag}.toml").read_text(encoding="utf-8"))
    assert parsed.language == code and len(parsed.items) == 30
    assert parsed.options(1)[0][0] == 1 and len(parsed.options(1)) == 4
    assert [v for v, _ in parsed.options(30)] == [1, 2, 3, 4, 5, 6, 7]
    assert wording.Wording.from_document(parsed.as_document()) == parsed


def test_every_problem_of_a_broken_file_is_named():
    text = (DATA / "epro_wording.en.toml").read_text(encoding="utf-8")
    broken = (text.replace('language = "en"', 'language = "de"')
              .replace('12 = "[Placeholder] Item 12"\n', "")
              .replace('["Placeholder 1", "Placeholder 2", "Placeholder 3", "Placeholder 4"]',
                       '["Placeholder 1", "Placeholder 2"]'))
    with pytest.raises(wording.WordingError) as refused:
        wording.parse(broken)
    problems = " | ".join(refused.value.problems)
    assert "language 'de'" in problems and "item(s) 12" in problems
    assert "[responses] 4 must list 4 labels" in problems
    with pytest.raises(wording.WordingError, match="not valid TOML"):
        wording.parse("items = [")


def test_no_eortc_item_text_is_shipped():
    """Phrases of the licensed English QLQ-C30 appear in no file of the project."""
    licensed = ("Do you have any trouble doing strenuous activities",
                "Were you limited in doing either your work",
                "How would you rate your overall quality of life")
    for path in ROOT.rglob("*"):
        if any(part in {".venv", "node_modules", ".git", "var"} for part in path.parts) or (
                not path.is_file() or path.suffix not in {".py", ".toml", ".html", ".po",
                                                          ".md", ".json", ".txt"}):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.name == "test_epro_wording.py":
            continue
        assert not any(phrase in text for phrase in licensed), path


def test_tokens_are_random_and_stored_as_a_digest():
    first, second = tokens.new_token(), tokens.new_token()
    assert first != second and len(first) == 43
    assert tokens.matches(first, tokens.digest(first))
    assert not tokens.matches(second, tokens.digest(first)) and not tokens.matches(first, "")
