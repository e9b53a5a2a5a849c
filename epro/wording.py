"""The licensed wording of a questionnaire, per trial and language (pure Python).

The EORTC QLQ-C30 wording (instructions, item text, response labels) is the EORTC's, licensed
per study and language (EORTC Quality of Life Group, "QLQ-C30" licence terms): trialdesk
ships none of it. A trial loads the translation it licensed from a TOML file
(``manage.py load_epro_wording``), in this format (``docs``: README "ePRO"):

    instrument = "EORTC QLQ-C30"        # the only instrument so far
    version = "3.0"
    language = "zh-Hans"                # BCP 47 tag: en, zh-Hans, fr
    licence = "EORTC licence ref ..."   # free text, shown to data managers only
    title = "..."                       # heading of the questionnaire page
    instructions = "..."                # shown before item 1

    [headings]                          # optional: text shown above an item
    1 = "..."
    6 = "During the past week:"

    [responses]
    4 = ["Not at all", "A little", "Quite a bit", "Very much"]   # items 1-28, values 1-4
    7 = ["Very poor", "", "", "", "", "", "Excellent"]           # items 29-30, values 1-7
                                        # (empty labels: only the number is shown)
    [items]                             # one entry per item number, 1-30
    1 = "..."
    ...
    30 = "..."

Every item number 1-30 must have text; a 4-point scale needs 4 non-empty labels, a 7-point
scale 7 labels whose first and last are non-empty (the anchors). :func:`parse` returns a
:class:`Wording` or raises :class:`WordingError` listing every problem at once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

INSTRUMENT = "EORTC QLQ-C30"
ITEM_COUNT = 30
#: Response scale (number of options) of each item: q1-q28 4-point, q29-q30 7-point
#: (EORTC QLQ-C30 Scoring Manual, 3rd ed., "Scoring the QLQ-C30 version 3.0").
ITEM_SCALE = {n: (7 if n >= 29 else 4) for n in range(1, ITEM_COUNT + 1)}
#: Language tags accepted in a file (BCP 47) and the Django language code of each.
LANGUAGE_TAGS = {"en": "en", "zh-hans": "zh-hans", "fr": "fr"}


class WordingError(ValueError):
    """A wording file that cannot be used; ``problems`` lists each problem."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Wording:
    instrument: str
    version: str
    language: str
    licence: str
    title: str
    instructions: str
    items: dict[int, str]
    responses: dict[int, list[str]]
    headings: dict[int, str] = field(default_factory=dict)

    def as_document(self) -> dict:
        """JSON-safe form (keys as strings), as stored per trial."""
        return {"instrument": self.instrument, "version": self.version,
                "language": self.language, "licence": self.licence, "title": self.title,
                "instructions": self.instructions,
                "items": {str(n): t for n, t in sorted(self.items.items())},
                "responses": {str(n): labels for n, labels in sorted(self.responses.items())},
                "headings": {str(n): t for n, t in sorted(self.headings.items())}}

    @classmethod
    def from_document(cls, doc: dict) -> Wording:
        return cls(instrument=doc["instrument"], version=doc["version"],
                   language=doc["language"], licence=doc.get("licence", ""),
                   title=doc.get("title", ""), instructions=doc.get("instructions", ""),
                   items={int(n): t for n, t in doc["items"].items()},
                   responses={int(n): list(v) for n, v in doc["responses"].items()},
                   headings={int(n): t for n, t in doc.get("headings", {}).items()})

    def options(self, item: int) -> list[tuple[int, str]]:
        """``(value, label)`` of each answer to ``item`` (value 1 = first label)."""
        return list(enumerate(self.responses[ITEM_SCALE[item]], start=1))


def language_code(tag: str) -> str | None:
    """The Django language code of a BCP 47 tag (``zh-Hans`` -> ``zh-hans``), or None."""
    return LANGUAGE_TAGS.get((tag or "").strip().lower().replace("_", "-"))


def _numbered(table, name: str, problems: list[str]) -> dict[int, object]:
    out = {}
    if not isinstance(table, dict):
        problems.append(f"[{name}] must be a table")
        return out
    for key, value in table.items():
        try:
            out[int(key)] = value
        except ValueError:
            problems.append(f"[{name}] key {key!r} is not a number")
    return out


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def parse(text: str) -> Wording:
    """Read and check a wording file (TOML, format above)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WordingError([f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    if data.get("instrument") != INSTRUMENT:
        problems.append(f"instrument must be {INSTRUMENT!r}")
    language = language_code(str(data.get("language", "")))
    if language is None:
        problems.append(f"language {data.get('language')!r} is not one of en, zh-Hans, fr")
    items = _numbered(data.get("items", {}), "items", problems)
    missing = [n for n in ITEM_SCALE if not _text(items.get(n))]
    if missing:
        problems.append(f"[items] has no text for item(s) {', '.join(map(str, missing))}")
    extra = sorted(set(items) - set(ITEM_SCALE))
    if extra:
        problems.append(f"[items] has unknown item number(s) {', '.join(map(str, extra))}")
    responses = _numbered(data.get("responses", {}), "responses", problems)
    for size in (4, 7):
        labels = responses.get(size)
        if not isinstance(labels, list) or len(labels) != size or not all(
                isinstance(label, str) for label in labels):
            problems.append(f"[responses] {size} must list {size} labels")
        elif size == 4 and not all(_text(label) for label in labels):
            problems.append("[responses] 4 labels must not be empty")
        elif size == 7 and not (_text(labels[0]) and _text(labels[-1])):
            problems.append("[responses] 7: the first and last labels must not be empty")
    headings = _numbered(data.get("headings", {}), "headings", problems)
    if any(n not in ITEM_SCALE or not _text(t) for n, t in headings.items()):
        problems.append("[headings] keys must be item numbers 1-30 with text")
    for name in ("title", "instructions"):
        if not _text(data.get(name)):
            problems.append(f"{name} is missing")
    if problems:
        raise WordingError(problems)
    return Wording(instrument=INSTRUMENT, version=str(data.get("version", "")),
                   language=language, licence=str(data.get("licence", "")),
                   title=data["title"].strip(), instructions=data["instructions"].strip(),
                   items={n: items[n].strip() for n in ITEM_SCALE},
                   responses={4: list(responses[4]), 7: list(responses[7])},
                   headings={n: t.strip() for n, t in headings.items()})
