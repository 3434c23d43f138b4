"""`cmms demo`: run a whole local system and one measurement per protocol."""

from __future__ import annotations

from cmms.common.errors import NotYetAvailableError


def demo() -> None:
    """Start a local system (Kingdom, 3 duchies, 3 EDPs), run one measurement per protocol, stop."""
    raise NotYetAvailableError(
        "cmms demo is not available yet: the end-to-end system (herald, mills, local runner) has not landed"
    )
