"""`cmms edp simulate` and `cmms mc measure`: argument errors are one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmms.deploy.cli import main


def _endpoints(tmp_path: Path) -> Path:
    path = tmp_path / "endpoints.json"
    path.write_text(
        json.dumps(
            {
                "pki_dir": str(tmp_path / "pki"),
                "kingdom": {"public_api": "127.0.0.1:1", "system_api": "127.0.0.1:2"},
                "measurement_consumers": ["mc1"],
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--protocol", "carrier-pigeon"], "--protocol must be one of"),
        (["--type", "impressions"], "--type must be one of"),
        (["--type", "reach-and-frequency", "--max-frequency", "1"], "maximum frequency"),
    ],
)
def test_mc_measure_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["mc", "measure", "--endpoints", str(_endpoints(tmp_path)), *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_edp_simulate_without_key_files_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["edp", "simulate", "--edp-id", "edp1", "--kingdom-target", "127.0.0.1:1"])
    assert exited.value.code == 2
    assert "give pki_dir" in capsys.readouterr().err
