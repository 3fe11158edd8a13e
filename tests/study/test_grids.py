"""The study grids: which runs each preset trains, and how flags override a preset."""

from __future__ import annotations

import pytest

from drsn_edge.study.grids import LOW_SNR_DB, PAPER_MODELS, preset
from runtime.errors import ConfigError


def test_full_grid_has_three_seeds_and_five_below_minus_four_db() -> None:
    grid = preset("full")
    points = grid.train_test_points()
    per_snr: dict[float, set[int]] = {}
    for p in points:
        per_snr.setdefault(p.snr_db, set()).add(p.seed)
    assert set(grid.snrs) == {-10.0, -8.0, -6.0, -4.0, -2.0, 0.0, 2.0, 4.0}
    for snr, seeds in per_snr.items():
        assert len(seeds) == (5 if snr < LOW_SNR_DB else 3), snr
    assert {p.model for p in points} == set(PAPER_MODELS)
    assert {p.noise for p in points} == {"gaussian", "laplacian", "pink"}
    # 5 models x 3 noises x (3 SNRs x 5 seeds + 5 SNRs x 3 seeds), no duplicates
    assert len(points) == len({(p.model, p.noise, p.snr_db, p.seed) for p in points}) == 5 * 3 * 30


def test_test_only_trains_one_clean_model_per_model_and_seed() -> None:
    grid = preset("full")
    points = grid.test_only_points()
    assert len(points) == len(PAPER_MODELS) * 5
    assert grid.runs() == 5 * 3 * 30 + 25


def test_default_grid_is_a_subset_of_the_full_grid_so_full_resumes_from_it() -> None:
    default, full = preset("default"), preset("full")
    assert default.epochs == full.epochs
    keys = {(p.model, p.noise, p.snr_db, p.seed) for p in full.train_test_points()}
    assert {(p.model, p.noise, p.snr_db, p.seed) for p in default.train_test_points()} <= keys


def test_overrides_replace_only_what_is_given() -> None:
    grid = preset("default").with_overrides(models=["drsn_cw_paper"], snrs=[-4.0], epochs=None)
    assert grid.models == ("drsn_cw_paper",) and grid.snrs == (-4.0,)
    assert grid.epochs == preset("default").epochs and grid.kinds == preset("default").kinds


@pytest.mark.parametrize("change", [{"protocols": ["both"]}, {"models": []}, {"epochs": 0}])
def test_invalid_grids_are_refused_with_the_fix(change: dict) -> None:
    with pytest.raises(ConfigError, match=r"protocol|empty|epochs"):
        preset("smoke").with_overrides(**change)


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="smoke, default, full"):
        preset("huge")
