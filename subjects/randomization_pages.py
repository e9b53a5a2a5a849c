"""Randomization administration in the admin, for the unblinded statistician only (403 for
every other role), wired into the admin site by ``edc.dashboard.site`` beside the dashboard:

* ``/admin/trials/trial/<id>/randomization/``: the lists, their use, the allocation errors;
* ``.../randomization/extend/``: new blocks for a stratum's list, with the reason;
* ``.../randomization/allocation-error/``: an allocation error and its correction.

Every page calls ``subjects.allocation_lists``, as the API does.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from edc.core import roles
from edc.core.admin import report_problems, service_form_view

from . import allocation_lists
from .enrollment import strata_of
from .models import RandomizationSlot, Subject


def _trial(model_admin, request, pk):
    trial = roles.scope(model_admin.model.objects.filter(pk=pk), request.user, trial="pk",
                        site=None).first()
    if trial is None:
        raise Http404("No such trial among yours.")
    if not roles.administers_randomization(request.user, trial):
        raise PermissionDenied
    return trial


def _back(trial):
    return HttpResponseRedirect(reverse("admin:trials_trial_randomization", args=[trial.pk]))


class ExtendForm(forms.Form):
    stratum = forms.ChoiceField(required=False,  # "" is the list of an unstratified trial
                                help_text="The list to extend (one per site when stratified "
                                          "by site).")
    blocks = forms.IntegerField(min_value=1, max_value=allocation_lists.MAX_BLOCKS,
                                help_text="New blocks, drawn from the list's seeded generator.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why the list is extended (audit trail).")

    def __init__(self, *args, trial, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stratum"].choices = [(s, s or "(not stratified)") for s in strata_of(trial)]


class AllocationErrorForm(forms.Form):
    subject = forms.ModelChoiceField(queryset=None)
    error = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="What went "
                            "wrong (e.g. the kit of another arm was dispensed).")
    correction = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                                 help_text="What was done about it, and why.")
    actual_arm = forms.ChoiceField(required=False, label="Arm actually received",
                                   help_text="Only if the subject was treated in another arm "
                                             "(DM ACTARM); the allocation stays (DM ARM).")

    def __init__(self, *args, trial, **kwargs):
        super().__init__(*args, **kwargs)
        allocated = RandomizationSlot.objects.filter(trial=trial, subject__isnull=False)
        self.fields["subject"].queryset = Subject.objects.filter(
            pk__in=allocated.values("subject_id")).order_by("subject_number")
        self.fields["actual_arm"].choices = [("", "as allocated")] + [
            (arm.code, f"{arm.code}: {arm.label}")
            for arm in trial.current_version().arms.order_by("sequence", "code")]


def randomization_view(model_admin, request, pk):
    trial = _trial(model_admin, request, pk)
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/subjects/randomization.html", {
        **model_admin.admin_site.each_context(request), "opts": model_admin.opts,
        "title": f"Randomization: {trial.registry_id}", "subtitle": trial.title,
        "trial": trial, "data": allocation_lists.overview(trial, request.user)})


def extend_view(model_admin, request, pk):
    trial = _trial(model_admin, request, pk)
    form = ExtendForm(request.POST or None, trial=trial)

    def perform(data):
        try:
            added = allocation_lists.extend(trial, stratum=data["stratum"],
                                            blocks=data["blocks"], reason=data["reason"],
                                            user=request.user)
        except allocation_lists.ListNotExtended as exc:
            report_problems(request, exc.problems, "The list was not extended:")
            return None
        messages.success(request, f"{added} slots added to the list.")
        return _back(trial)

    return service_form_view(model_admin, request, trial, form, title="Extend an allocation "
                             "list", perform=perform, submit="Extend",
                             permission=lambda user: roles.administers_randomization(
                                 user, trial),
                             intro="New blocks continue the list from its secret-seeded "
                                   "generator, with the protocol's ratio and block sizes; the "
                                   "extension is in the audit trail with your reason.")


def allocation_error_view(model_admin, request, pk):
    trial = _trial(model_admin, request, pk)
    form = AllocationErrorForm(request.POST or None, trial=trial)

    def perform(data):
        allocation_lists.record_allocation_error(
            data["subject"], error=data["error"], correction=data["correction"],
            actual_arm=data["actual_arm"], user=request.user)
        messages.success(request, "Allocation error recorded; the allocation stays.")
        return _back(trial)

    return service_form_view(model_admin, request, trial, form, title="Record an allocation "
                             "error", perform=perform, submit="Record",
                             permission=lambda user: roles.administers_randomization(
                                 user, trial))
