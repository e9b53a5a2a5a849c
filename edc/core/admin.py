"""Admin plumbing for clinical models: site scoping, reason for change, history, no delete.

Besides :class:`ClinicalAdmin` this module holds what the apps' admins share:

* :func:`blinded_for`: whether a user must not see a trial's true allocation (arm, and the
  product given where it differs by arm; ``trials.blinding.BLINDED_PRODUCT`` is shown instead);
* :func:`service_form_view`: a small form page that calls a service function (enroll,
  record_visit, mark_missed, record_exposure, ...) and shows its ``ValidationError`` on the
  form's fields, so the admin never re-implements a clinical rule;
* :class:`ScopedRelatedFilter`: a related-field list filter listing only the values the
  user's (scoped) rows have, so filters never name other trials or sites;
* :class:`AllocationGuard`: no URL lookup and no sortable column goes through the allocation
  (``trials.masking.reveals_allocation``), whoever asks; every registered admin has it
  (system check ``edc.E010``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from django.utils.html import format_html_join

from . import hooks, roles
from .api.concurrency import current_etag, etag_for
from .audit import change_reason, history
from .models import PendingTask
from .roles import reveals_allocation, scoped_choices

#: Bookkeeping columns never listed in an audit trail.
AUDIT_NOISE = frozenset({"updated_at", "created_at"})


def blinded_for(user, trial) -> bool:
    """True when ``user`` must not see the true arm of ``trial``'s subjects."""
    return trial is not None and roles.blinded_to(user, trial)


def blinded_q(user, trial: str = "trial") -> Q:
    """Rows (reached through ``trial``) whose trial is blinded for ``user``: for annotations
    that show a blinded label instead of the arm in one query."""
    if roles.is_admin(user):
        return Q(pk__in=[])
    unblinded = hooks.membership_model().objects.filter(
        user=user, trial=OuterRef(trial), unblinded=True, retired_at__isnull=True)
    return Q(~Exists(unblinded), ~Q(**{f"{trial}__masking": "none"}))


def plain(number) -> str:
    """A number in fixed notation without trailing zeros (2000000, not 2E+6)."""
    if number is None:
        return ""
    text = format(Decimal(str(number)).normalize(), "f")
    return text


def follow(obj, path: str):
    """The object at the end of a ``subject__trial``-style lookup path (``pk`` = obj)."""
    if path == "pk":
        return obj
    for part in path.split("__"):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


class ReasonForChangeForm(forms.ModelForm):
    """Adds a required "reason for change" when an existing record is edited."""

    reason_for_change = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when changing a saved record (audit trail).",
    )

    loaded_version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = etag_for(
                self.instance.pk, getattr(self.instance, "updated_at", None))

    @cached_property
    def changed_data(self):
        """The version the page was opened with is no change of the record."""
        return [name for name in super().changed_data if name != "loaded_version"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and self.has_changed() and not (
            cleaned.get("reason_for_change") or ""
        ).strip():
            self.add_error("reason_for_change", "A reason for change is required.")
        self._check_version(cleaned.get("loaded_version"))
        return cleaned

    def _check_version(self, loaded: str | None) -> None:
        """Optimistic concurrency: refuse to save over a version newer than the one the page
        was opened with (the admin's change view is one transaction: the row stays locked
        until the save commits)."""
        if not self.instance.pk or not loaded:
            return
        current = current_etag(self.instance, lock=True)
        if current is not None and current != loaded:
            raise ValidationError(
                "Someone else changed this record after you opened this page; nothing was "
                "saved. Reload the page to see the current values, then re-apply your change.",
                code="stale_version")


class ScopedRelatedFilter(admin.RelatedOnlyFieldListFilter):
    """Related filter whose choices come from the user's scoped rows only (no other trials,
    sites or subjects are named), in one query whatever the number of rows."""


def shown_value(value):
    """An audited value as a person reads it: numbers in plain notation (5000000000, not
    ``Decimal('5000000000.000000')``), yes/no, ISO dates, times in UTC; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | float):
        return plain(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def user_names(ids) -> dict[int, str]:
    """``{user id: "Full Name (username)" or "username"}`` in one query."""
    from django.contrib.auth import get_user_model

    return {user.pk: (f"{user.get_full_name()} ({user.username})" if user.get_full_name()
                      else user.username)
            for user in get_user_model().objects.filter(pk__in=[i for i in ids if i])}


class AllocationSafeChangeList(ChangeList):
    """Ignores an ``?o=`` column whose ordering goes through the allocation."""

    def get_ordering_field(self, field_name):
        field = super().get_ordering_field(field_name)
        path = getattr(field, "name", field) if not isinstance(field, str) else field
        if isinstance(path, str) and reveals_allocation(self.model, path):
            return None
        return field


class AllocationGuard:
    """ModelAdmin mixin: Django allows any lookup on a model's own fields and relations
    (``?arm_id=7``, ``?intervention__code=PBO``) and any ``?o=`` column; none may go through
    the allocation (an arm, a product, a randomization slot), in any spelling, whoever asks:
    the allocation is filtered through the list filters, which apply the blinding policy."""

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        if reveals_allocation(self.model, lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_changelist(self, request, **kwargs):
        return AllocationSafeChangeList


def audit_rows(obj, hidden=frozenset()) -> list[dict]:
    """The audit trail of ``obj`` (``edc.core.audit.history``) without the hidden fields, with
    user names (not ids) and formatted values."""
    hidden = set(hidden) | AUDIT_NOISE
    events = history(obj)
    names = user_names({row["user"] for row in events})
    rows = []
    for row in events:
        rows.append({
            **row,
            "who": names.get(row["user"]) or row["username"] or "system",
            "changes": [(name, shown_value(old), shown_value(new))
                        for name, (old, new) in row["changes"].items() if name not in hidden],
        })
    return rows


def choice_label(obj) -> str:
    """How a subject or visit is named in a dropdown: with its trial, since subject numbers
    repeat across trials (every trial's first subject at site 01 is 01001)."""
    subject = getattr(obj, "subject", obj)
    return f"{subject.trial} · {obj}"


class ClinicalAdmin(AllocationGuard, admin.ModelAdmin):
    """ModelAdmin for audited clinical models.

    * lists only the records of the user's trials and sites (``scope_trial``/``scope_site``),
      and limits every subject / site / trial / visit dropdown the same way;
    * asks for a reason for change on every edit of a saved record;
    * never deletes; shows the record's audit trail read-only (on the page and as its
      "History"), without ``history_hidden_fields`` and without what the blinding policy
      hides from the user (``trials.masking.hidden_audit_fields``);
    * no lookup or ordering through the allocation (:class:`AllocationGuard`);
    * permissions follow the trialdesk roles (edc.core.roles), not per-model Django permissions.
    """

    form = ReasonForChangeForm
    scope_trial = "trial"
    scope_site: str | None = "site"
    history_hidden_fields: tuple[str, ...] = ()

    def get_queryset(self, request):
        return roles.scope(
            super().get_queryset(request), request.user,
            trial=self.scope_trial, site=self.scope_site,
        )

    def trial_of(self, obj):
        return follow(obj, self.scope_trial)

    def get_history_hidden_fields(self, request, obj) -> set[str]:
        return set(self.history_hidden_fields) | hooks.blinding_policy().hidden_audit_fields(
            request.user, self.model, self.trial_of(obj))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._audit_hidden_fields = frozenset(self.get_history_hidden_fields(request, obj))
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Dropdowns of subjects, sites, trials and visits list the user's own only."""
        scoped = scoped_choices(db_field.related_model, request.user)
        if scoped is not None and "queryset" not in kwargs:
            kwargs["queryset"] = scoped
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and getattr(db_field.related_model, "choice_labelled", False):
            formfield.label_from_instance = choice_label
        return formfield

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("audit_trail")
        return fields

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj)
                  if f not in ("audit_trail", "loaded_version")]
        if obj is None and "reason_for_change" in fields:
            fields.remove("reason_for_change")
        if obj is not None:
            fields.append("audit_trail")
        return fields

    def get_fieldsets(self, request, obj=None):
        """Every change page sends back the version it was opened with (hidden field)."""
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and issubclass(self.form, ReasonForChangeForm):
            fieldsets.append((None, {"fields": ["loaded_version"]}))
        return fieldsets

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return roles.can_enter_data(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.can_enter_data(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return user.is_active and user.is_staff and bool(roles.roles_of(user))

    def has_enter_data_permission(self, request) -> bool:
        """For admin actions declared with ``permissions=["enter_data"]``."""
        return roles.can_enter_data(request.user)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def save_model(self, request, obj, form, change):
        if change:
            reason = (form.cleaned_data.get("reason_for_change") or "").strip()
            if not reason and not form.has_changed():
                return  # nothing changed on the record itself (e.g. only an inline was added)
            with transaction.atomic(), change_reason(reason, request.user):
                super().save_model(request, obj, form, change)
        else:
            super().save_model(request, obj, form, change)

    @admin.display(description="Audit trail")
    def audit_trail(self, obj):
        hidden = getattr(obj, "_audit_hidden_fields", self.history_hidden_fields)
        return format_html_join(
            "",
            "<div><strong>{}</strong> · {} · {} · reason: {}<br><code>{}</code></div>",
            (
                (
                    row["at"].strftime("%Y-%m-%d %H:%M:%S UTC"),
                    row["event"],
                    row["who"],
                    row["reason"] or "(initial entry)",
                    "; ".join(f"{k}: {'—' if old is None else old} → "
                              f"{'—' if new is None else new}"
                              for k, old, new in row["changes"]),
                )
                for row in audit_rows(obj, hidden)
            ),
        )

    def history_view(self, request, object_id, extra_context=None):
        """The record's audit trail (who, when in UTC, old → new, reason), not Django's log."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Audit trail: {obj}",
            "subtitle": None,
            "object": obj,
            "opts": self.opts,
            "module_name": str(self.opts.verbose_name_plural).capitalize(),
            "rows": audit_rows(obj, obj._audit_hidden_fields),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/edc/audit_history.html", context)


# ---------------------------------------------------------------- service forms


class RoleInline:
    """Inline permissions follow the trialdesk roles (like ClinicalAdmin), not Django's model
    permissions."""

    can_delete = False

    def has_view_permission(self, request, obj=None) -> bool:
        return bool(roles.roles_of(request.user))

    def has_add_permission(self, request, obj=None) -> bool:
        return roles.can_enter_data(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.can_enter_data(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def errors_onto_form(form: forms.Form, exc: ValidationError, rename=None) -> None:
    """Show a service's ``ValidationError`` on the form field it names (else on the form)."""
    rename = rename or {}
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for name, errors in exc.message_dict.items():
        field = rename.get(name, name)
        for message in errors:
            if field in form.fields and field not in form.errors:
                form.add_error(field, message)
            else:
                form.add_error(None, f"{name.replace('_', ' ')}: {message}")


def service_form_view(model_admin, request, obj, form, *, title: str, perform,
                      intro: str = "", submit: str = "Save", rename=None, clean_message=None,
                      permission=roles.can_enter_data, context=None):
    """Render ``form`` on an admin page; on a valid POST call ``perform(cleaned_data)``.

    ``perform`` calls the service and returns the response (usually a redirect); a
    ``ValidationError`` it raises is shown on the form (``rename`` maps service field names
    onto form fields; ``clean_message`` may rewrite messages, e.g. for blinded users).
    """
    if not permission(request.user):
        raise PermissionDenied
    if request.method == "POST" and form.is_valid():
        try:
            response = perform(form.cleaned_data)
        except ValidationError as exc:
            if clean_message is not None:
                exc = ValidationError(
                    {k: [clean_message(m) for m in v] for k, v in exc.message_dict.items()}
                    if hasattr(exc, "error_dict") else [clean_message(m) for m in exc.messages])
            errors_onto_form(form, exc, rename)
        else:
            if response is not None:
                return response
    opts = model_admin.model._meta
    page = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": str(obj) if obj is not None else None,
        "opts": opts,
        "object": obj,
        "form": form,
        "intro": intro,
        "submit": submit,
        "module_name": str(opts.verbose_name_plural).capitalize(),
        "media": model_admin.media + form.media,
        **(context or {}),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/edc/service_form.html", page)


class RetireForm(forms.Form):
    """Why a record entered in error is retired (kept, audited, never deleted)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why the record is retired: entered in error, and how "
                                       "(kept in the audit trail; nothing is deleted).")


def report_problems(request, problems, intro: str) -> None:
    """Each refusal reason as its own error message (e.g. ``EnrollmentRefused.problems``)."""
    messages.error(request, intro)
    for problem in problems:
        messages.error(request, problem)


@admin.register(PendingTask)
class PendingTaskAdmin(AllocationGuard, admin.ModelAdmin):
    list_display = ["id", "task_name", "args", "state", "attempts", "created_at", "finished_at"]
    list_filter = ["state", "task_name"]
    search_fields = ["task_name", "last_error"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in PendingTask._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.has_role(request.user, roles.ADMIN, roles.DATA_MANAGER)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)
