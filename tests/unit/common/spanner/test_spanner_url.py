"""`spanner://projects/P/instances/I/databases/D` parsing."""

from __future__ import annotations

import pytest

from cmms.common.errors import UserError
from cmms.common.spanner.url import SpannerUrl, is_spanner_url


def test_a_database_url_names_project_instance_and_database() -> None:
    url = "spanner://projects/my-project/instances/duchy-1/databases/computations_db"
    parsed = SpannerUrl.parse(url)
    assert parsed == SpannerUrl("my-project", "duchy-1", "computations_db")
    assert str(parsed) == url


def test_domain_scoped_projects_are_accepted() -> None:
    parsed = SpannerUrl.parse("spanner://projects/example.com:halo/instances/ab/databases/cd")
    assert parsed.project == "example.com:halo"


@pytest.mark.parametrize(
    "url",
    [
        "spanner://projects/p/instances/i/databases/d",  # ids too short for Spanner
        "spanner://projects/p/instances/Upper/databases/db",
        "spanner://projects/p/instances/inst/databases/db/extra",
        "spanner://projects/p/instances/inst",
        "spanner:///instances/inst/databases/db",
        "spanner://projects/p/instances/inst/databases/" + "d" * 31,
    ],
)
def test_malformed_urls_are_user_errors_that_show_the_expected_form(url: str) -> None:
    with pytest.raises(UserError, match="spanner://projects/PROJECT/instances/INSTANCE"):
        SpannerUrl.parse(url)


def test_only_the_spanner_scheme_counts() -> None:
    assert is_spanner_url("spanner://projects/p/instances/ii/databases/dd")
    assert not is_spanner_url("sqlite:///spanner://x")
    assert not is_spanner_url("postgresql://h/db")
    assert not is_spanner_url(None)
