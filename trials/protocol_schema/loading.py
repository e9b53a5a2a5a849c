"""Parsing and loading protocol files: every problem at once (``ProtocolError``), digest,
canonical JSON, the parsed protocol of a stored version."""

from __future__ import annotations

import functools
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .checks import _check_refs
from .model import Issue, Protocol, ProtocolError
from .reading import (
    _T,
    DECLARE,
    OPTIONAL,
    _arm,
    _Ctx,
    _design,
    _dose_finding,
    _eligibility,
    _endpoint,
    _intervention,
    _regimen,
    _safety,
    _tox_rule,
    _trial,
    _unique,
    _visit_plan,
    normalise_quote,
    protocol_digest,
)
from .terms import SCHEMA_VERSION

# --------------------------------------------------------------------------- loading


def parse_protocol(data: Mapping[str, Any], file: str = "<protocol>", *,
                   source_text: str | None = None, base_dir: str | os.PathLike[str] | None = None,
                   digest: str = "") -> Protocol:
    """Validate a parsed TOML document and build the ``Protocol``.

    Quotes are checked against ``source_text`` if given, else against the file named by
    ``source`` relative to ``base_dir``.  Raises ``ProtocolError`` listing every problem."""
    ctx = _Ctx(file)
    top = _T(ctx, dict(data), "")
    version = top.get("schema_version", "int")
    if version is not None and version != SCHEMA_VERSION:
        top.err("schema_version", f"unsupported schema version {version} "
                                  f"(this loader reads {SCHEMA_VERSION})")
    source = top.get("source", "str")
    trial_t, design_t = top.sub("trial"), top.sub("design")
    arms_t, ivs_t = top.subs("arms"), top.subs("interventions")
    regimens_t = top.subs("regimens")
    df_t = top.sub("dose_finding", OPTIONAL)
    vp_t, el_t, sf_t = top.sub("visit_plan"), top.sub("eligibility"), top.sub("safety")
    rules_t = top.subs("toxicity_rules", DECLARE)
    endpoints_t = top.subs("endpoints", DECLARE)
    top.fields.discard("quote")
    top.finish()

    arms = tuple(_arm(t) for t in arms_t)
    if "arms" in data and isinstance(data["arms"], list) and not arms:
        top.err("arms", "at least one arm is required")
    interventions = tuple(_intervention(t) for t in ivs_t)
    _unique(ctx, [(a.code, f"arms[{i}].code") for i, a in enumerate(arms)], "arm code")
    _unique(ctx, [(iv.code, f"interventions[{i}].code") for i, iv in enumerate(interventions)],
            "intervention code")
    rules = tuple(_tox_rule(t) for t in rules_t) if "toxicity_rules" in data else None
    if rules:
        _unique(ctx, [(r.code, f"toxicity_rules[{i}].code") for i, r in enumerate(rules)],
                "toxicity rule code")

    source_text_n, source_digest = "", ""
    if source is not None and source_text is None:
        src_path = Path(base_dir or ".") / source
        try:
            source_text = src_path.read_text(encoding="utf-8")
        except OSError as exc:
            top.err("source", f"cannot read {source}: {exc.strerror or exc}")
    if source_text is not None:
        source_text_n = normalise_quote(source_text)
        source_digest = protocol_digest(source_text)

    protocol = Protocol(
        schema_version=version, file=file, source=source, digest=digest,
        source_digest=source_digest,
        trial=_trial(trial_t) if trial_t else None,
        design=_design(design_t) if design_t else None,
        arms=arms, interventions=interventions,
        regimens=tuple(_regimen(t) for t in regimens_t),
        dose_finding=_dose_finding(df_t) if df_t else None,
        visit_plan=_visit_plan(vp_t) if vp_t else None,
        eligibility=_eligibility(el_t) if el_t else None,
        safety=_safety(sf_t) if sf_t else None,
        toxicity_rules=rules,
        endpoints=tuple(_endpoint(t) for t in endpoints_t) if "endpoints" in data else None,
        not_stated=top.not_stated, note=top.note,
    )
    _check_refs(ctx, protocol)

    if source_text is not None:
        for path, q in ctx.quotes:
            nq = normalise_quote(q)
            if not nq:
                ctx.err(path, "empty quote")
            elif nq not in source_text_n:
                short = nq if len(nq) <= 60 else nq[:57] + "..."
                ctx.err(path, f"quote not found in {source}: {short!r}")
    if ctx.issues:
        raise ProtocolError(ctx.issues)
    return protocol


def load_protocol_text(text: str, file: str = "<protocol>", *,
                       source_text: str | None = None,
                       base_dir: str | os.PathLike[str] | None = None) -> Protocol:
    """Parse and validate protocol TOML ``text``; ``file`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError([Issue(file, "(toml)", str(exc))]) from None
    return parse_protocol(data, file, source_text=source_text, base_dir=base_dir,
                          digest=protocol_digest(text))


def load_protocol(path: str | os.PathLike[str]) -> Protocol:
    """Load ``seeds/<short-name>.toml``; ``source`` resolves relative to the file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError([Issue(str(path), "(file)", f"cannot read: {exc}")]) from None
    return load_protocol_text(text, str(path), base_dir=path.parent)


def load_all(directory: str | os.PathLike[str]) -> list[Protocol]:
    """Every ``*.toml`` in ``directory``, sorted by name; problems of all files in one error."""
    protocols, issues = [], []
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            protocols.append(load_protocol(path))
        except ProtocolError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ProtocolError(issues)
    return protocols


def canonical_json(protocol: Protocol) -> str:
    """Stable JSON of the parsed protocol (sorted keys), e.g. for storage or diffing."""
    return json.dumps(protocol.to_dict(), sort_keys=True, ensure_ascii=False)


@functools.lru_cache(maxsize=64)
def _parse_version(digest: str, file: str, file_text: str, source_text: str) -> Protocol:
    return load_protocol_text(file_text, file, source_text=source_text)


#: The stored texts a protocol is parsed from (``ProtocolVersion``): a read that needs only
#: the parsed protocol defers them (with ``document``, its JSON).
TEXT_FIELDS = ("source_file", "file_text", "source_text")


@functools.lru_cache(maxsize=64)
def _parse_stored(model, pk: int, digest: str) -> Protocol:
    """The protocol of stored version ``pk`` of ``model`` (``ProtocolVersion``, passed in:
    this module knows no model), parsed from its texts read once."""
    texts = model._default_manager.filter(pk=pk, digest=digest).values_list(*TEXT_FIELDS).get()
    return _parse_version(digest, *texts)


def protocol_of(version) -> Protocol:
    """The parsed protocol of a stored version, rebuilt from the file text it was loaded from.

    Each version keeps its own file and source-document text, so an amendment never changes
    what an older version says. A version read without its texts (deferred: enrollment reads
    the subject's and the trial's current version so) is parsed from the texts stored under
    its id and digest, read once per process: a version is never changed once loaded (the
    loader adds a version for a changed file; the admin shows versions read-only), and its
    digest is the SHA-256 of its file.
    """
    if version.get_deferred_fields() & set(TEXT_FIELDS):
        return _parse_stored(type(version), version.pk, version.digest)
    return _parse_version(version.digest, version.source_file, version.file_text,
                          version.source_text)
