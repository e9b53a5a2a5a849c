"""The sections the apps above ``subjects`` add to the admin's subject pages are named in
settings and checked at start-up (``subjects.checks``)."""

from django.test import override_settings

from subjects.checks import page_sections_load


def test_the_sections_the_project_names_load():
    assert page_sections_load() == []


@override_settings(SUBJECTS_PAGE_SECTIONS=["visits.subject_page.NoSuchSection",
                                           "subjects.page_sections.sections"])
def test_a_section_that_does_not_import_or_is_not_a_section_is_an_error():
    errors = page_sections_load()
    assert [e.id for e in errors] == ["subjects.E001", "subjects.E002"]
    assert "SUBJECTS_PAGE_SECTIONS[0]: visits.subject_page.NoSuchSection" in errors[0].msg
