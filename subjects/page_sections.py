"""Sections other apps add to the subject list and the subject page of the admin.

The subject page is site staff's one screen per subject: it shows the visits, exposures and
forms (``visits``) and the adverse events (``adverse_events``), apps that depend on
``subjects``, never the reverse. Each names its section in ``settings.SUBJECTS_PAGE_SECTIONS``
(dotted paths, loaded with ``import_string`` as Django loads middleware); ``subjects.admin``
asks every section for its list columns, list filters, list annotations and page context.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


class SubjectPageSection:
    """A section of the subject list and page; every hook is optional."""

    list_display: tuple = ()  # callables of a subject row (``admin.display``)
    list_filter: tuple = ()

    def annotate(self, queryset, user):
        """The subject list's queryset with what ``list_display`` reads, in the same query."""
        return queryset

    def overview(self, subject, user, mask) -> dict:
        """Context for the subject page (``mask``: ``trials.masking.text_masker`` of ``user``)."""
        return {}


@cache
def sections() -> tuple[SubjectPageSection, ...]:
    """The sections ``settings.SUBJECTS_PAGE_SECTIONS`` names, in its order."""
    return tuple(import_string(path)() for path in settings.SUBJECTS_PAGE_SECTIONS)

