from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.crypto.hybrid import ECIES_P256, HybridPrivateKey
from cmms.testing.mill import MillStageEnvironment, signer_from_files
from cmms.testing.pki import dev_pki  # noqa: F401

OpenEnvironment = Callable[[str], Awaitable[MillStageEnvironment]]


@pytest.fixture
async def open_environment(
    tmp_path: Path,
    dev_pki: PkiLayout,  # noqa: F811
) -> AsyncIterator[OpenEnvironment]:
    opened: list[MillStageEnvironment] = []

    async def open_for(duchy_id: str) -> MillStageEnvironment:
        files = dev_pki.party(Principal.duchy(duchy_id))
        signer = signer_from_files(f"duchies/{duchy_id}/certificates/cs", files.cs_key.read_bytes())
        environment = await MillStageEnvironment.open(tmp_path, duchy_id=duchy_id, signer=signer)
        opened.append(environment)
        return environment

    yield open_for
    for environment in opened:
        await environment.close()


@pytest.fixture(scope="session")
def consumer_key() -> HybridPrivateKey:
    """The measurement consumer's result key."""
    return HybridPrivateKey.generate(ECIES_P256)
