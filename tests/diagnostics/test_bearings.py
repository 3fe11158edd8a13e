"""Bearing kinematics against CWRU's published fault-frequency table, and bad geometry."""

from __future__ import annotations

import pytest

from runtime.diagnostics.bearings import CATALOGUE, bearing_from, lookup_bearing
from runtime.errors import ConfigError


def test_cwru_drive_end_orders_match_the_published_table() -> None:
    # CWRU's bearing page: BPFI 5.4152, BPFO 3.5848, FTF 0.39828, "BSF" 4.7135 (= 2 x spin) x shaft speed
    orders = lookup_bearing("6205").orders()
    assert orders.bpfi == pytest.approx(5.4152, rel=2e-3)
    assert orders.bpfo == pytest.approx(3.5848, rel=2e-3)
    assert orders.ftf == pytest.approx(0.39828, rel=2e-3)
    assert 2 * orders.bsf == pytest.approx(4.7135, rel=2e-3)


def test_cwru_fan_end_orders_match_the_published_table() -> None:
    orders = lookup_bearing("SKF 6203-2RS JEM").orders()
    assert orders.bpfi == pytest.approx(4.9469, rel=2e-3)
    assert orders.bpfo == pytest.approx(3.0530, rel=2e-3)
    assert 2 * orders.bsf == pytest.approx(3.9874, rel=2e-3)


def test_frequencies_scale_with_speed_and_every_entry_names_a_source() -> None:
    b = lookup_bearing("6205")
    assert b.frequencies(1797).bpfo == pytest.approx(3.5848 * 1797 / 60, rel=2e-3)
    assert all(entry.source and entry.source != "given by the user" for entry in CATALOGUE.values())


def test_unknown_bearing_lists_the_catalogue() -> None:
    with pytest.raises(ConfigError) as err:
        lookup_bearing("6309-ZZ")
    assert "SKF 6205-2RS JEM" in str(err.value) and "Rexnord ZA-2115" in str(err.value)


@pytest.mark.parametrize(
    ("geometry", "words"),
    [
        ({"n_elements": 9, "element_diameter_mm": 40.0, "pitch_diameter_mm": 39.0}, "smaller than the pitch"),
        ({"n_elements": 30, "element_diameter_mm": 8.0, "pitch_diameter_mm": 39.0}, "do not fit"),
        ({"n_elements": 2, "element_diameter_mm": 8.0, "pitch_diameter_mm": 39.0}, ">= 3"),
        ({"n_elements": 9, "element_diameter_mm": -1.0, "pitch_diameter_mm": 39.0}, "positive"),
        (
            {"n_elements": 9, "element_diameter_mm": 8.0, "pitch_diameter_mm": 39.0, "contact_angle_deg": 95},
            "contact angle",
        ),
        ({"n_elements": 9, "element_diameter_mm": 8.0}, "missing"),
        (
            {"n_elements": 9, "element_diameter_mm": 8.0, "pitch_diameter_mm": 39.0, "balls": 9},
            "unknown keys",
        ),
    ],
)
def test_impossible_geometry_is_refused_with_the_rule_it_breaks(geometry: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        bearing_from(geometry)


@pytest.mark.parametrize("rpm", [None, 0, -1797, float("nan"), "fast"])
def test_missing_or_zero_speed_is_refused(rpm: object) -> None:
    with pytest.raises(ConfigError, match="speed"):
        lookup_bearing("6205").frequencies(rpm)  # type: ignore[arg-type]


def test_er16k_orders_match_its_published_readme() -> None:
    # Curtin University readme of its SpectraQuest rig: BPFO 3.572, BPFI 5.428, FTF 0.3969, BSF 2.32
    orders = lookup_bearing("ER16K").orders()
    assert orders.bpfo == pytest.approx(3.572, rel=1e-3)
    assert orders.bpfi == pytest.approx(5.428, rel=1e-3)
    assert orders.ftf == pytest.approx(0.3969, rel=1e-3)
    assert orders.bsf == pytest.approx(2.32, rel=2e-3)
