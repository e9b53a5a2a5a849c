"""The API's filter backends: the blinding policy and site scoping on every list.

* :class:`PolicyFilterBackend` drops any filter whose path goes through the allocation
  (``trials.masking.reveals_allocation``: an arm, a product, a randomization slot), and limits
  the choices of every related-record filter (subject, visit, site, trial) to the user's own,
  so that neither a filter nor the browsable API's filter form names another site's subjects
  or visits; a trial given to a filter is checked against the user's memberships, already
  read for the scoping (:class:`ReachedTrialField`), not by a query;
* :class:`PolicyOrderingFilter` ignores any ordering through the allocation.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django_filters import ModelChoiceFilter, ModelMultipleChoiceFilter
from django_filters.fields import ModelChoiceField
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import get_model_field
from rest_framework.filters import OrderingFilter

from edc.core import hooks
from edc.core.roles import is_admin, reach_of, reveals_allocation, scoped_choices


class ReachedTrialField(ModelChoiceField):
    """A trial choice valid when the user's memberships reach it (``reached``: their trial
    ids, ``roles.reach_of``), the same set as the scoped choices, without a query; the
    filter needs the trial's id only."""

    def __init__(self, *args, reached: frozenset[int], **kwargs):
        self.reached = reached
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            pk = int(value)
        except (TypeError, ValueError):
            pk = None
        if pk not in self.reached:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice",
                                  params={"value": value})
        return self.queryset.model(pk=pk)


class PolicyFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        for name, spec in list(filterset.filters.items()):
            if reveals_allocation(queryset.model, spec.field_name):
                del filterset.filters[name]
            elif isinstance(spec, ModelChoiceFilter | ModelMultipleChoiceFilter):
                field = get_model_field(queryset.model, spec.field_name)
                model = getattr(field, "related_model", None)
                scoped = scoped_choices(model, request.user) if model is not None else None
                if scoped is not None:  # django-filter rebuilds extra["queryset"] from it
                    spec.queryset = spec.extra["queryset"] = scoped
                    if (isinstance(spec, ModelChoiceFilter) and model is hooks.trial_model()
                            and request.user.is_authenticated and not is_admin(request.user)):
                        spec.field_class = ReachedTrialField
                        spec.extra["reached"] = frozenset(reach_of(request.user).sites)
                    spec.__dict__.pop("_field", None)  # built with the unscoped choices
        return filterset


class PolicyOrderingFilter(OrderingFilter):
    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        return [term for term in valid if not reveals_allocation(queryset.model, term)]
