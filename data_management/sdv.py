"""Source data verification: a monitor marks a record or one field verified against source.

ICH E6(R3) 3.11.4 (monitoring: verification of data against source records). A later change
to a verified value clears the verification (``data_management.guards``), saying who changed
it, when and why; verifying again after the change is a new, audited transition.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from edc.core import roles
from edc.core.audit import change_reason

from . import workflow as wf
from .exceptions import NotPermitted
from .locks import lock_state_of
from .models import Verification
from .targets import target_of


@transaction.atomic
def verify(record, user, field_name: str = "") -> Verification:
    """Mark ``record`` (or its field ``field_name``) verified against source."""
    if not roles.has_role(user, roles.MONITOR, roles.ADMIN):
        raise NotPermitted("Only monitors verify data against source.")
    target = target_of(record, field_name)
    ver = (Verification.objects.select_for_update()
           .filter(content_type=target.content_type, object_id=record.pk,
                   field_name=field_name).first())
    new_state = wf.verify(ver.state if ver else wf.UNVERIFIED,
                          lock_state=lock_state_of(record))
    if ver is None:
        return Verification.objects.create(
            **target.denormalized(), field_name=field_name, target_label=target.label,
            state=new_state, verified_by=user, verified_at=timezone.now())
    with change_reason(f"verified against source again after: {ver.cleared_reason}", user):
        ver.state, ver.verified_by, ver.verified_at = new_state, user, timezone.now()
        ver.cleared_by, ver.cleared_at, ver.cleared_reason = None, None, ""
        ver.save()
    return ver
