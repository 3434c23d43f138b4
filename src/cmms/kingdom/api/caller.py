"""Who is calling the public API, and the ownership checks every method starts with."""

from __future__ import annotations

from cmms.common.identity import Principal, PrincipalKind, PrincipalProvider
from cmms.kingdom.errors import permission_denied


def require(principal_provider: PrincipalProvider, kind: PrincipalKind, owner_id: str) -> Principal:
    """The caller, who must be the party `kind`/`owner_id`; PERMISSION_DENIED otherwise."""
    principal = principal_provider()
    if principal.kind is not kind or principal.id != owner_id:
        raise permission_denied(f"{principal} may not act for this resource's owner")
    return principal
