"""Synthetic audiences: deterministic, overlapping as configured, frequencies as weighted."""

from __future__ import annotations

import numpy as np
import pytest

from cmms.clients.edp.population import (
    Audience,
    FrequencyDistribution,
    Population,
    impression_vids,
    reach_and_frequency,
    reached_vids,
)


def test_same_seed_same_events_other_seed_other_events() -> None:
    audience = Audience("edp1", 0.3)
    first = impression_vids(Population(seed=7, size=10_000), audience)
    again = impression_vids(Population(seed=7, size=10_000), audience)
    other = impression_vids(Population(seed=8, size=10_000), audience)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_reach_is_the_configured_fraction_of_distinct_population_vids() -> None:
    population = Population(seed=1, size=20_000, first_vid=100)
    vids = reached_vids(population, Audience("edp1", 0.25))
    assert vids.size == 5_000
    assert np.unique(vids).size == vids.size
    assert vids.min() >= 100 and vids.max() < 20_100


def test_full_overlap_nests_the_smaller_audience_in_the_larger() -> None:
    population = Population(seed=3, size=10_000, overlap=1.0)
    small = reached_vids(population, Audience("edp1", 0.1))
    large = reached_vids(population, Audience("edp2", 0.4))
    assert np.isin(small, large).all()


def test_partial_overlap_shares_at_least_the_shared_prefix() -> None:
    population = Population(seed=3, size=10_000, overlap=0.5)
    a, b = Audience("edp1", 0.2), Audience("edp2", 0.3)
    shared = np.intersect1d(reached_vids(population, a), reached_vids(population, b)).size
    assert shared >= min(a.shared_count(population), b.shared_count(population)) == 1_000


def test_no_overlap_leaves_only_chance_intersections() -> None:
    population = Population(seed=5, size=100_000, overlap=0.0)
    a = reached_vids(population, Audience("edp1", 0.2))
    b = reached_vids(population, Audience("edp2", 0.2))
    # Independent uniform draws: expected 4000 common VIDs, standard deviation about 57.
    assert abs(np.intersect1d(a, b).size - 4_000) < 400


def test_frequency_follows_the_weights() -> None:
    population = Population(seed=9, size=50_000)
    audience = Audience("edp1", 1.0, FrequencyDistribution((1.0, 0.0, 1.0)))
    truth = reach_and_frequency([impression_vids(population, audience)], max_frequency=3)
    assert truth.reach == 50_000
    assert truth.relative_frequency[2] == 0.0
    assert truth.relative_frequency[1] == pytest.approx(0.5, abs=0.02)
    assert truth.relative_frequency[3] == pytest.approx(0.5, abs=0.02)


def test_ground_truth_merges_edps_and_caps_at_max_frequency() -> None:
    truth = reach_and_frequency([np.array([1, 1, 2]), np.array([1, 3, 3, 3])], max_frequency=2)
    assert truth.reach == 3
    assert truth.relative_frequency == {1: 1 / 3, 2: 2 / 3}


def test_a_million_vid_population_is_generated_vectorised() -> None:
    population = Population(seed=11, size=1_000_000)
    events = impression_vids(population, Audience("edp1", 0.5))
    assert np.unique(events).size == 500_000


@pytest.mark.parametrize("bad", [(), (-1.0, 2.0), (0.0, 0.0)])
def test_bad_weights_are_rejected(bad: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        FrequencyDistribution(bad)
