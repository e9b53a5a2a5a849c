"""Protocol files -> trials and protocol versions in PostgreSQL (seed_protocols)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from subjects.models import Subject
from tests.factories import make_subject
from trials.models import Arm, DoseLevel, EligibilityCriterion, ProtocolVersion, Trial

pytestmark = pytest.mark.django_db
SEEDS = Path(__file__).resolve().parents[2] / "seeds"


@pytest.fixture
def loaded():
    call_command("seed_protocols")
    return {t.registry_id: t for t in Trial.objects.all()}


def test_all_five_load_with_their_facts(loaded):
    assert sorted(loaded) == ["NCT05672420", "NCT05699811", "NCT05962450", "NCT06722105",
                              "SHEH-MSC-L"]
    blinded = loaded["NCT06722105"]
    assert blinded.masking == "double" and blinded.allocation == "randomized"
    arms = Arm.objects.filter(protocol_version__trial=blinded)
    assert arms.count() == 3
    assert sorted(arms.values_list("blinded_label", flat=True)) == [
        "Treatment group A", "Treatment group B", "Treatment group C"]
    chain = DoseLevel.objects.filter(protocol_version__trial=loaded["NCT05699811"])
    assert [float(level.value) for level in chain] == [2e6, 6e5, 2e5]
    assert {level.unit for level in chain} == {"cells/kg"}
    crm = DoseLevel.objects.filter(protocol_version__trial=loaded["SHEH-MSC-L"])
    assert [float(level.value) for level in crm] == [1e6, 2e6, 3e6]
    grid = DoseLevel.objects.filter(protocol_version__trial=loaded["NCT05672420"])
    assert [level.code for level in grid] == ["A", "B", "C", "D", "E"]
    assert all(level.value is None for level in grid)
    v = loaded["NCT05699811"].current_version()
    assert (v.min_age_years, v.max_age_years) == (18, 75)
    assert EligibilityCriterion.objects.filter(protocol_version=v, kind="inclusion").count() == 9
    assert loaded["NCT05699811"].sites.get().city == "Beijing"
    assert loaded["NCT05962450"].ctcae_version == "5.0"


def test_loading_twice_changes_nothing(loaded):
    before = ProtocolVersion.objects.count(), Arm.objects.count()
    call_command("seed_protocols")
    assert (ProtocolVersion.objects.count(), Arm.objects.count()) == before


def test_changed_file_is_a_new_version_and_subjects_keep_theirs(tmp_path, loaded):
    shutil.copytree(SEEDS / "source", tmp_path / "source")
    amended = tmp_path / "NCT05699811.toml"
    text = (SEEDS / "NCT05699811.toml").read_text(encoding="utf-8")
    amended.write_text(text.replace("target_enrollment = 40", "target_enrollment = 41"),
                       encoding="utf-8")
    trial = loaded["NCT05699811"]
    v1 = trial.current_version()
    subject = make_subject(trial, trial.sites.get())
    call_command("seed_protocols", str(amended))
    trial.refresh_from_db()
    assert trial.current_version().version == 2
    assert trial.target_enrollment == 41
    assert Subject.objects.get(pk=subject.pk).protocol_version == v1
    assert v1.protocol().trial.target_enrollment == 40
    assert trial.current_version().protocol().trial.target_enrollment == 41


def test_bad_file_is_refused_whole_with_named_errors(tmp_path):
    shutil.copytree(SEEDS / "source", tmp_path / "source")
    bad = tmp_path / "bad.toml"
    text = (SEEDS / "NCT05699811.toml").read_text(encoding="utf-8")
    bad.write_text(text.replace('ctcae_version = "5.0"', 'ctcae_version = "4.03"')
                   .replace("target_days = 28, min_days = 28", "target_days = 28, min_days = 30",
                            1), encoding="utf-8")
    good = SEEDS / "SHEH-MSC-L.toml"
    with pytest.raises(CommandError) as refused:
        call_command("seed_protocols", str(good), str(bad))
    message = str(refused.value)
    assert "nothing loaded" in message
    assert "bad.toml: safety.ctcae_version:" in message
    assert "bad.toml: regimens[0].interval" in message
    assert Trial.objects.count() == 0


@pytest.mark.django_db
def test_every_seed_trial_has_its_sites_from_the_protocol_file():
    """Seed 004's document lists no site: its file enters the sponsor as one inferred site."""
    from django.core.management import call_command

    from subjects.models import Site
    from trials.models import Trial

    call_command("seed_protocols", verbosity=0)
    for trial in Trial.objects.all():
        names = [site.name for site in trial.current_version().protocol().trial.sites]
        assert names, trial.registry_id
        assert sorted(Site.objects.filter(trial=trial).values_list("name", flat=True)) == \
            sorted(names)
    aphp = Trial.objects.get(registry_id="NCT06722105").current_version().protocol()
    assert aphp.trial.sites[0].inferred == ("name", "city", "country")
