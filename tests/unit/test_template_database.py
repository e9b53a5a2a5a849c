"""The template a test database is copied from is named by what the migrated schema depends on
(``edc.core.template_database``): a change to any migration names another template."""

from __future__ import annotations

from edc.core.template_database import _migration_files, _receiver_files, fingerprint


def test_the_fingerprint_changes_with_a_files_content_and_with_a_fact(tmp_path):
    first, second = tmp_path / "0001_initial.py", tmp_path / "0002_more.py"
    first.write_text("operations = []\n")
    second.write_text("operations = []\n")
    base = fingerprint([first, second], ["Django==5.2"])

    assert fingerprint([second, first], ["Django==5.2"]) == base
    first.write_text("operations = [1]\n")
    assert fingerprint([first, second], ["Django==5.2"]) != base
    first.write_text("operations = []\n")
    assert fingerprint([first, second], ["Django==5.2"]) == base
    assert fingerprint([first, second], ["Django==5.3"]) != base
    assert fingerprint([first], ["Django==5.2"]) != base


def test_the_fingerprint_covers_every_migration_what_they_use_and_the_migrate_receivers():
    files = {path.as_posix() for path in _migration_files() | _receiver_files()}

    assert any(p.endswith("trials/migrations/0001_squashed_0003.py") for p in files)
    assert any(p.endswith("django/contrib/auth/migrations/0001_initial.py") for p in files)
    assert any(p.endswith("edc/core/migration_operations.py") for p in files)  # used by them
    assert any(p.endswith("edc/core/dbroles.py") for p in files)  # the post_migrate grants


def test_the_fingerprint_names_a_file_by_where_it_is_imported_from_not_the_checkouts_path(
        tmp_path):
    one, other = tmp_path / "a" / "0001_initial.py", tmp_path / "b" / "0001_initial.py"
    for path in (one, other):
        path.parent.mkdir()
        path.write_text("operations = []\n")

    assert fingerprint([one], []) == fingerprint([other], [])
