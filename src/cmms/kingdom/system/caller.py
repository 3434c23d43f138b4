"""The calling duchy, from the injected principal provider."""

from __future__ import annotations

from cmms.common.identity import PrincipalKind, PrincipalProvider
from cmms.kingdom.errors import permission_denied


def calling_duchy(principal_provider: PrincipalProvider) -> str:
    principal = principal_provider()
    if principal.kind is not PrincipalKind.DUCHY:
        raise permission_denied(f"{principal} is not a duchy")
    return principal.id
