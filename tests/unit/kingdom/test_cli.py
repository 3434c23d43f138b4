"""`cmms kingdom db migrate`, `seed` (idempotent) and `example-config`."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from cmms.common.errors import UserError
from cmms.common.pki import PkiLayout
from cmms.deploy.cli import app
from cmms.kingdom.config import load_config

runner = CliRunner()


def test_migrate_and_seed_twice(tmp_path: Path, dev_pki: PkiLayout) -> None:
    url = f"sqlite:///{tmp_path / 'kingdom.db'}"
    config = tmp_path / "kingdom.yaml"
    printed = runner.invoke(app, ["kingdom", "example-config"])
    assert printed.exit_code == 0, printed.output
    config.write_text(printed.output)
    assert load_config(config).hmss is not None

    migrated = runner.invoke(app, ["kingdom", "db", "migrate", "--database-url", url])
    assert migrated.exit_code == 0, migrated.output
    assert "revision 0001" in migrated.output

    arguments = ["kingdom", "seed", "--pki", str(dev_pki.directory), "--config", str(config)]
    first = runner.invoke(app, [*arguments, "--database-url", url])
    second = runner.invoke(app, [*arguments, "--database-url", url])
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert "registered measurementConsumers/mc1" in first.output
    assert "registered duchies/worker1" in first.output
    assert first.output.count("certificate ") == 7


def test_config_errors_are_user_errors(tmp_path: Path, dev_pki: PkiLayout) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"duchies": [{"id": "aggregator"}]}))
    url = f"sqlite:///{tmp_path / 'k.db'}"
    result = runner.invoke(
        app,
        [
            "kingdom",
            "seed",
            "--pki",
            str(dev_pki.directory),
            "--config",
            str(bad),
            "--database-url",
            url,
        ],
    )
    assert isinstance(result.exception, UserError)
    assert "invalid Kingdom config" in str(result.exception)
