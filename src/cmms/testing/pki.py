"""Test PKI: pytest fixtures that generate a development PKI once per test session.

Use from a conftest: `from cmms.testing.pki import dev_pki, untrusted_pki  # noqa: F401`.
"""

from __future__ import annotations

import pytest

from cmms.common.pki import PkiLayout, PkiSpec, generate_pki

TEST_PKI_SPEC = PkiSpec()


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    """A PKI with the default parties (kingdom, worker1/2, aggregator, edp1-3, mc1)."""
    return generate_pki(tmp_path_factory.mktemp("pki"), TEST_PKI_SPEC)


@pytest.fixture(scope="session")
def untrusted_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    """A second, independent PKI with the same party ids, whose roots `dev_pki` does not trust."""
    return generate_pki(tmp_path_factory.mktemp("untrusted_pki"), TEST_PKI_SPEC)
