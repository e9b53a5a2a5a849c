"""Masking groups of products in blinded trials (``trials.blinding``, no database)."""

from __future__ import annotations

from trials import blinding

SEED_004 = [("MSC-AT", ""), ("PBO", "MSC-AT")]


def test_a_product_and_its_matching_placebo_form_one_group():
    assert blinding.masking_groups(SEED_004) == {"MSC-AT": "MSC-AT", "PBO": "MSC-AT"}


def test_products_without_a_placebo_are_not_masked():
    groups = blinding.masking_groups([("CHEMO", ""), ("DRUG", ""), ("PBO-D", "DRUG")])
    assert groups == {"DRUG": "DRUG", "PBO-D": "DRUG"}
    assert blinding.shown_code("CHEMO", groups) == "CHEMO"


def test_a_blinded_user_sees_both_members_alike():
    groups = blinding.masking_groups(SEED_004)
    shown = {code: blinding.shown_code(code, groups) for code, _ in SEED_004}
    assert shown == {"MSC-AT": "BLINDED:MSC-AT", "PBO": "BLINDED:MSC-AT"}
    assert blinding.blinded_name("MSC-AT") == (
        "Blinded study treatment (MSC-AT or matching placebo)")
    assert "PBO" not in blinding.blinded_name("MSC-AT")
