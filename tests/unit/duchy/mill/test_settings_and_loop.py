"""`cmms duchy mill` settings and the job loop: the claimed computation first, then more work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cmms.crypto.hybrid import HybridPrivateKey
from cmms.deploy.cli import main
from cmms.duchy.mill.process import Mill, run_mill
from cmms.duchy.mill.settings import MillSettings, parse_protocol
from cmms.duchy.mill.tokens import stage_of
from cmms.duchy.mill.trustee import TrusTeeHandlers
from cmms.protocols.stages import ProtocolType
from cmms.protocols.trustee.stages import Stage

from .builders import requisitions, trustee_details
from .conftest import OpenEnvironment


def settings(tmp_path: Path, **changes: Any) -> MillSettings:
    values: dict[str, Any] = {
        "tls_cert_file": tmp_path / "tls.pem",
        "tls_key_file": tmp_path / "tls.key",
        "cert_collection_file": tmp_path / "roots.pem",
        "duchy_name": "worker1",
        "internal_api_target": "localhost:1",
        "kingdom_system_api_target": "localhost:2",
        "blob_storage_url": "memory://",
        "consent_signaling_certificate_resource_name": "duchies/worker1/certificates/cs",
        "consent_signaling_private_key_der_file": tmp_path / "cs.der",
    }
    values.update(changes)
    return MillSettings(**values)


@pytest.mark.parametrize(
    ("text", "protocol"),
    [
        ("HONEST_MAJORITY_SHARE_SHUFFLE", ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE),
        ("3", ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE),
        ("trustee", ProtocolType.TRUS_TEE),
        ("ro-llv2", ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2),
        ("LIQUID_LEGIONS_V2", ProtocolType.LIQUID_LEGIONS_V2),
    ],
)
def test_computation_types_by_name_number_or_short_name(text: str, protocol: ProtocolType) -> None:
    assert parse_protocol(text) is protocol


@pytest.mark.parametrize("text", ["UNSPECIFIED", "0", "7", "sketchy"])
def test_unknown_computation_types_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="computation type"):
        parse_protocol(text)


def test_the_claim_flags_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="go together"):
        settings(tmp_path, claimed_computation_id="abc")


def test_work_needs_a_type(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="computation-type"):
        settings(tmp_path)


def test_the_claimed_type_is_the_work_type_unless_told_otherwise(tmp_path: Path) -> None:
    claimed = settings(
        tmp_path,
        claimed_computation_type="HONEST_MAJORITY_SHARE_SHUFFLE",
        claimed_computation_id="abc",
        claimed_computation_version=3,
    )
    assert claimed.work_type() is ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE
    polling = settings(tmp_path, computation_type="TRUS_TEE", poll=True)
    assert polling.work_type() is ProtocolType.TRUS_TEE


def test_chunks_stay_between_one_byte_and_four_mib(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        settings(tmp_path, computation_type="hmss", bytes_per_chunk=5 * 1024 * 1024)


def test_peer_targets_exclude_the_duchy_itself(tmp_path: Path) -> None:
    mill = settings(
        tmp_path,
        computation_type="hmss",
        duchy_computation_control_target={"worker1": "a:1", "worker2": "b:2"},
    )
    assert list(mill.duchy_computation_control_target) == ["worker1", "worker2"]


def test_cli_reports_settings_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["duchy", "mill", "--duchy-name", "worker1"])
    assert exit_info.value.code != 0
    assert "invalid settings" in capsys.readouterr().err


async def test_the_job_processes_its_claim_then_claims_until_the_queue_is_empty(
    tmp_path: Path, open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    details = trustee_details(consumer_key)
    for gid in ("first", "second", "third"):
        await env.create(gid, ProtocolType.TRUS_TEE, details, requisitions([f"{gid}-r"]))
    claimed = await env.claim(ProtocolType.TRUS_TEE)
    job = settings(
        tmp_path,
        duchy_name="aggregator",
        claimed_computation_type="TRUS_TEE",
        claimed_computation_id=claimed.global_computation_id,
        claimed_computation_version=claimed.version,
    )
    mill = Mill(env.runner(TrusTeeHandlers(None).table()), job)

    assert await run_mill(mill) == 3

    for gid in ("first", "second", "third"):
        assert stage_of(await env.get(gid)) == Stage.WAIT_TO_START
