"""System checks of the hooks ``subjects`` reads from settings (``manage.py check``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

from .page_sections import SubjectPageSection


@register()
def page_sections_load(app_configs=None, **kwargs) -> list[Error]:
    """Every ``SUBJECTS_PAGE_SECTIONS`` entry names a ``SubjectPageSection`` subclass."""
    errors = []
    for i, path in enumerate(getattr(settings, "SUBJECTS_PAGE_SECTIONS", [])):
        try:
            section = import_string(path)
        except ImportError as exc:
            errors.append(Error(f"SUBJECTS_PAGE_SECTIONS[{i}]: {path} cannot be imported: {exc}",
                                id="subjects.E001"))
            continue
        if not (isinstance(section, type) and issubclass(section, SubjectPageSection)):
            errors.append(Error(f"SUBJECTS_PAGE_SECTIONS[{i}]: {path} is not a "
                                "subjects.page_sections.SubjectPageSection", id="subjects.E002"))
    return errors
