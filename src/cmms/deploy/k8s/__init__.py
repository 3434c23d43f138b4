"""Kubernetes manifests of the Kingdom (`kingdom/`) and of one duchy (`duchy/`), as plain YAML.

They ship with the package so `cmms` installs carry them; docs/OPERATIONS.md explains how to
apply them. `documents` loads one group for tools and tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

MANIFESTS_DIR = Path(__file__).parent
Group = Literal["kingdom", "duchy"]


def manifest_files(group: Group) -> list[Path]:
    return sorted((MANIFESTS_DIR / group).glob("*.yaml"))


def documents(group: Group) -> list[dict[str, Any]]:
    """Every object of the group, in file order."""
    found: list[dict[str, Any]] = []
    for path in manifest_files(group):
        found.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found
