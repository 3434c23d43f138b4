from __future__ import annotations

import pytest

from cmms.common.pki import PkiLayout
from cmms.testing.pki import dev_pki, untrusted_pki
from cmms.testing.requisitions import ConsentWorld

__all__ = ["dev_pki", "untrusted_pki"]


@pytest.fixture(scope="session")
def world(dev_pki: PkiLayout) -> ConsentWorld:
    return ConsentWorld.from_pki(dev_pki)
