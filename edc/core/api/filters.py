"""The API's filter backends: the blinding policy and site scoping on every list.

* :class:`PolicyFilterBackend` drops any filter whose path goes through the allocation
  (``trials.masking.reveals_allocation``: an arm, a product, a randomization slot), and limits
  the choices of every related-record filter (subject, visit, site, trial) to the user's own,
  so that neither a filter nor the browsable API's filter form names another site's subjects
  or visits; a trial given to a filter is checked against the user's memberships, already
  read for the scoping (:class:`ReachedTrialField`), not by a query;
* :class:`PolicyOrderingFilter` ignores any ordering through the allocation.

Per request, only the filters the query string names are scoped, built into the form and
validated (a filter given no value filters nothing: django-filter skips empty values), and a
view's ``filterset_fields`` become a filterset class once per process, not on every request
(issue 19: building every filter's scoped choice field took a list page's time). The
browsable API's filter form still shows every filter.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.template import loader
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


def _named(name: str, keys) -> bool:
    """Whether a query string with ``keys`` gives filter ``name`` a value (its widget reads
    ``name``, or ``name_<suffix>`` for range and multi-value widgets; ``name__<lookup>`` is
    another filter)."""
    prefix = name + "_"
    return any(key == name or key.startswith(prefix) and key[len(prefix):len(prefix) + 1] != "_"
               for key in keys)


class PolicyFilterBackend(DjangoFilterBackend):
    #: (view class, model) -> the filterset class of a view's ``filterset_fields``.
    _auto_classes: dict = {}

    def get_filterset_class(self, view, queryset=None):
        """django-filter's class, made once per view class and model for ``filterset_fields``
        (it declares a new class on every call) when the view declares them on its class."""
        fields = getattr(view, "filterset_fields", None)
        if (getattr(view, "filterset_class", None) or queryset is None or not fields
                or fields is not getattr(type(view), "filterset_fields", None)):
            return super().get_filterset_class(view, queryset)
        key = (type(view), queryset.model)
        made = self._auto_classes.get(key)
        if made is None:
            made = self._auto_classes[key] = super().get_filterset_class(view, queryset)
        return made

    def get_filterset(self, request, queryset, view, every: bool = False):
        """The filterset for ``request``: the filters its query string names (``every``: all,
        for the browsable API's form), without the allocation's, with scoped choices."""
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return None
        keys = list(request.query_params)
        filterset = filterset_class.__new__(filterset_class)
        # the instance's own base filters: __init__ copies these, not the class's every one
        filterset.base_filters = {
            name: spec for name, spec in filterset_class.base_filters.items()
            if (every or spec.extra.get("required") or _named(name, keys))
            and not reveals_allocation(queryset.model, spec.field_name)}
        filterset.__init__(**self.get_filterset_kwargs(request, queryset, view))
        for spec in filterset.filters.values():
            if not isinstance(spec, ModelChoiceFilter | ModelMultipleChoiceFilter):
                continue
            field = get_model_field(queryset.model, spec.field_name)
            model = getattr(field, "related_model", None)
            trial_filter = (isinstance(spec, ModelChoiceFilter) and model is hooks.trial_model()
                            and request.user.is_authenticated and not is_admin(request.user))
            if trial_filter and not every and model.choice_scope is not None:
                scoped = model._default_manager.none()  # memberships alone: choices never read
            else:
                scoped = scoped_choices(model, request.user) if model is not None else None
            if scoped is None:
                continue
            spec.queryset = spec.extra["queryset"] = scoped  # django-filter rebuilds from it
            if trial_filter:
                spec.field_class = ReachedTrialField
                spec.extra["reached"] = frozenset(reach_of(request.user).sites)
            spec.__dict__.pop("_field", None)  # built with the unscoped choices
        return filterset

    def to_html(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view, every=True)
        if filterset is None:
            return None
        return loader.get_template(self.template).render({"filter": filterset}, request)


class PolicyOrderingFilter(OrderingFilter):
    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        return [term for term in valid if not reveals_allocation(queryset.model, term)]
