"""The CLI contract: command groups exist and bad input gets one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cmms.deploy.cli import main

GROUPS = ["kingdom", "duchy", "edp", "mc", "certs", "local", "demo", "bench"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cmms.deploy.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_command_group() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    for group in GROUPS:
        assert group in listed, f"{group} missing from cmms --help"


@pytest.mark.parametrize("group", [g for g in GROUPS if g != "demo"])
def test_each_group_has_help(group: str) -> None:
    result = run_cli(group, "--help")
    assert result.returncode == 0, result.stderr
    assert f"cmms {group}" in result.stdout


def test_unknown_command_prints_one_line_and_fails() -> None:
    result = run_cli("no-such-command")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "no-such-command" in result.stderr


def test_main_reports_user_errors_as_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["no-such-command"])
    assert excinfo.value.code != 0
    assert capsys.readouterr().err.startswith("cmms: error:")
