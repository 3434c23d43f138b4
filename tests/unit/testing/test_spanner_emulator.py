"""The emulator fixture spreads databases over instances so a long suite never hits its cap."""

from __future__ import annotations

from cmms.common.spanner.url import SpannerUrl
from cmms.testing.spanner_emulator import SpannerEmulator, spanner_emulator  # noqa: F401


def test_databases_move_to_a_fresh_instance_before_the_cap(
    spanner_emulator: SpannerEmulator,  # noqa: F811
) -> None:
    urls = [spanner_emulator.new_database_url("cap") for _ in range(95)]
    instances = [SpannerUrl.parse(url).instance for url in urls]
    assert len(set(instances)) >= 2
    assert all(instances.count(instance) <= 90 for instance in set(instances))
    assert len(set(urls)) == len(urls)
    assert instances[-1] == spanner_emulator.instance
