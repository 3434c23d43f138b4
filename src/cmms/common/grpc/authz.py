"""Declarative authorisation: which principals may call which methods.

A policy maps a fully-qualified method (`/pkg.Service/Method`) or a whole service
(`pkg.Service`) to an `Allow` rule. A method rule wins over its service's rule; a method with
no rule at all is closed to everyone. Finer checks that depend on the request (the owner of a
resource, the participants of a computation) belong in the service, which reads the caller from
`cmms.common.identity.current_principal`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from cmms.common.grpc.names import split_method_pattern
from cmms.common.grpc.status import StatusError
from cmms.common.identity import Principal, PrincipalKind

_KIND_PLURALS = {
    PrincipalKind.DUCHY: "duchies",
    PrincipalKind.DATA_PROVIDER: "data providers",
    PrincipalKind.MEASUREMENT_CONSUMER: "measurement consumers",
    PrincipalKind.KINGDOM: "the Kingdom",
}


@dataclass(frozen=True)
class Allow:
    """Callers of these kinds, further narrowed by `when` if given; `who` describes them."""

    kinds: frozenset[PrincipalKind]
    when: Callable[[Principal], bool] | None = None
    who: str | None = None

    def permits(self, principal: Principal) -> bool:
        """Whether `principal` may call."""
        return principal.kind in self.kinds and (self.when is None or self.when(principal))

    def describe(self) -> str:
        """Who may call, for error messages."""
        if self.who is not None:
            return self.who
        if not self.kinds:
            return "nobody"
        return " or ".join(_KIND_PLURALS[k] for k in PrincipalKind if k in self.kinds)


def allow(
    *kinds: PrincipalKind, when: Callable[[Principal], bool] | None = None, who: str | None = None
) -> Allow:
    """A rule admitting `kinds` (narrowed by `when`)."""
    return Allow(frozenset(kinds), when, who)


ANY_AUTHENTICATED = Allow(frozenset(PrincipalKind), who="any authenticated party")


def only(principal: Principal) -> Allow:
    """A rule admitting exactly `principal` (e.g. a duchy's internal API admits that duchy)."""
    return Allow(
        frozenset({principal.kind}), when=lambda p: p == principal, who=principal.resource_name
    )


class AuthorizationPolicy:
    """Method or service -> `Allow`; `check` raises PERMISSION_DENIED for anyone else."""

    def __init__(self, rules: Mapping[str, Allow]) -> None:
        for key in rules:
            split_method_pattern(key)
        self._rules = dict(rules)

    @property
    def rules(self) -> Mapping[str, Allow]:
        """The rules, as given."""
        return dict(self._rules)

    def merged(self, extra: Mapping[str, Allow]) -> AuthorizationPolicy:
        """This policy plus `extra` rules for keys it does not already have."""
        return AuthorizationPolicy({**extra, **self._rules})

    def rule_for(self, method: str) -> Allow | None:
        """The rule governing `method` (`/pkg.Service/Method`), if any."""
        rule = self._rules.get(method)
        if rule is None and method.count("/") == 2:
            rule = self._rules.get(method.split("/")[1])
        return rule

    def check(self, method: str, principal: Principal) -> None:
        """Raise `StatusError(PERMISSION_DENIED)` unless `principal` may call `method`."""
        rule = self.rule_for(method)
        if rule is None:
            raise StatusError(
                grpc.StatusCode.PERMISSION_DENIED, f"{method} is not open to any caller"
            )
        if not rule.permits(principal):
            raise StatusError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} may be called only by {rule.describe()}; caller is {principal}",
            )
