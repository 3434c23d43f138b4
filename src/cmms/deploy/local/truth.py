"""The true reach and frequency of a local system's EDPs, counted in the clear.

The EDP simulators generate their events from (population seed, size, overlap, their id) alone,
so the same functions called here with the same options give exactly their events.
"""

from __future__ import annotations

from cmms.clients.edp.population import (
    Audience,
    Population,
    ReachAndFrequency,
    impression_vids,
    reach_and_frequency,
)
from cmms.deploy.local.options import LocalOptions


def population_of(options: LocalOptions) -> Population:
    return Population(
        seed=options.population_seed, size=options.population_size, overlap=options.overlap
    )


def true_reach_and_frequency(
    options: LocalOptions, data_providers: tuple[str, ...], max_frequency: int
) -> ReachAndFrequency:
    """Reach and relative frequency (buckets 1..max, the last holding everything above) over
    the union of the EDPs' events, unsampled."""
    population = population_of(options)
    events = [
        impression_vids(population, Audience(edp, options.reach_fraction)) for edp in data_providers
    ]
    return reach_and_frequency(events, max_frequency)
