"""Investigator sign-off of a subject's casebook or of one visit.

21 CFR Part 11:

* 11.50 — the signature shows and stores the signer's printed name, the date and time (UTC)
  and its meaning (``MEANINGS``; shown before signing by ``GET /api/v1/signatures/meaning/``);
* 11.70 — the signature is linked to the signed data: ``data_digest`` (SHA-256 of the data at
  signing) and the automatic invalidation when signed data changes (``data_management.guards``);
* 11.200(a) — the signer re-enters the password (the second component next to the
  authenticated user id of the session);
* 11.300(d) — failed signature passwords count towards the account lock-out like failed
  log-ins (``accounts.passwords``): once locked, signing is refused even with the right one.

ICH E6(R3) 2.12 / 3.16.1: the investigator is responsible for the data reported; signing is
refused while queries on the data are unresolved and when the data is locked.
"""

from __future__ import annotations

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.passwords import AccountLocked, reauthenticate
from edc.core import roles

from . import workflow as wf
from .exceptions import NotPermitted, SignatureRejected
from .locks import lock_state_of
from .models import Query, Signature
from .targets import crf_models, paths, target_of

MEANINGS = {
    "subject": "I approve the data in this casebook as complete and accurate.",
    "visit": "I approve the data of this visit as complete and accurate.",
}
IGNORED = {"updated_at"}


def covered_querysets(level: str, record):
    """The querysets of every record a signature of ``record`` at ``level`` covers."""
    yield type(record)._base_manager.filter(pk=record.pk)
    for model in crf_models():
        p = paths(model)
        if model is type(record):
            continue
        if level == "subject":
            yield model._base_manager.filter(**{p.subject: record.pk})
        elif p.visit not in (None, "pk"):
            yield model._base_manager.filter(**{p.visit: record.pk})


def data_digest(level: str, record) -> str:
    """SHA-256 over the covered records' values (stable order), linking signature and data."""
    payload = []
    for queryset in covered_querysets(level, record):
        names = [f.attname for f in queryset.model._meta.concrete_fields
                 if f.name not in IGNORED]
        payload.append([queryset.model._meta.label_lower,
                        list(queryset.order_by("pk").values_list(*names))])
    text = json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def level_of(record) -> str:
    label = record._meta.label_lower
    if label == "subjects.subject":
        return "subject"
    if label == "visits.visit":
        return "visit"
    raise NotPermitted("Only a subject's casebook or a visit can be signed.")


def current_state(target) -> str:
    signatures = Signature.objects.filter(content_type=target.content_type,
                                          object_id=target.object_id)
    if signatures.filter(state=wf.SIGNED).exists():
        return wf.SIGNED
    return wf.INVALIDATED if signatures.exists() else wf.UNSIGNED


def sign(user, record, password: str, meaning: str = "", request=None) -> Signature:
    """Sign ``record`` (a Subject: the casebook, or a Visit) after re-entering the password
    (``request``: the request it came with, for the lock-out's record of the attempt).

    The password is checked before the signing transaction, so that a failed attempt stays
    counted when the refusal rolls the signing back."""
    level = level_of(record)
    if not roles.has_role(user, roles.INVESTIGATOR):
        raise NotPermitted("Only an investigator can sign a casebook or a visit.")
    try:
        password_ok = reauthenticate(request, user, password)
    except AccountLocked as exc:
        raise SignatureRejected(f"{exc} Nothing was signed.") from None
    if not password_ok:
        raise SignatureRejected("The password is not correct: nothing was signed. Re-enter "
                                "your own password to sign.")
    return _sign(user, record, level, meaning)


@transaction.atomic
def _sign(user, record, level: str, meaning: str) -> Signature:
    target = target_of(record)
    type(record)._base_manager.select_for_update().filter(pk=record.pk).first()
    unresolved = Query.objects.filter(state__in=wf.UNRESOLVED_QUERY_STATES,
                                      **{f"{level}_id": record.pk}).count()
    new_state = wf.sign(current_state(target), unresolved_queries=unresolved,
                        lock_state=lock_state_of(record))
    return Signature.objects.create(
        **target.denormalized(), level=level, state=new_state, signed_by=user,
        printed_name=user.get_full_name().strip() or user.get_username(),
        meaning=(meaning or "").strip() or MEANINGS[level], signed_at=timezone.now(),
        data_digest=data_digest(level, record), target_label=target.label,
    )


def is_intact(signature: Signature) -> bool:
    """Whether the signed data still hashes to the digest stored at signing."""
    record = signature.record
    return signature.data_digest == data_digest(signature.level, record)
