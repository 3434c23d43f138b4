"""The declarative authorisation policy, without a server."""

from __future__ import annotations

import grpc
import pytest

from cmms.common.grpc import ANY_AUTHENTICATED, AuthorizationPolicy, StatusError, allow, only
from cmms.common.identity import Principal, PrincipalKind

W1 = Principal.duchy("worker1")
W2 = Principal.duchy("worker2")
EDP = Principal.data_provider("edp1")
MC = Principal.measurement_consumer("mc1")


def denial(policy: AuthorizationPolicy, method: str, principal: Principal) -> str:
    with pytest.raises(StatusError) as excinfo:
        policy.check(method, principal)
    assert excinfo.value.code == grpc.StatusCode.PERMISSION_DENIED
    return excinfo.value.message


def test_method_rule_overrides_service_rule() -> None:
    policy = AuthorizationPolicy(
        {"p.S": allow(PrincipalKind.DUCHY), "/p.S/Public": ANY_AUTHENTICATED}
    )
    policy.check("/p.S/Private", W1)
    policy.check("/p.S/Public", EDP)
    assert "only by duchies; caller is dataProviders/edp1" in denial(policy, "/p.S/Private", EDP)


def test_unlisted_methods_are_closed() -> None:
    policy = AuthorizationPolicy({"p.S": ANY_AUTHENTICATED})
    assert "not open to any caller" in denial(policy, "/p.Other/M", W1)


def test_predicate_and_description() -> None:
    policy = AuthorizationPolicy(
        {
            "p.Internal": only(W1),
            "p.Peers": allow(PrincipalKind.DUCHY, when=lambda p: p != W1, who="peer duchies"),
            "p.Public": allow(PrincipalKind.DATA_PROVIDER, PrincipalKind.MEASUREMENT_CONSUMER),
        }
    )
    policy.check("/p.Internal/M", W1)
    assert "only by duchies/worker1" in denial(policy, "/p.Internal/M", W2)
    policy.check("/p.Peers/M", W2)
    assert "only by peer duchies" in denial(policy, "/p.Peers/M", W1)
    policy.check("/p.Public/M", MC)
    assert "data providers or measurement consumers" in denial(policy, "/p.Public/M", W1)


def test_merged_keeps_existing_rules() -> None:
    policy = AuthorizationPolicy({"p.S": allow(PrincipalKind.DUCHY)}).merged(
        {"p.S": ANY_AUTHENTICATED, "p.T": ANY_AUTHENTICATED}
    )
    denial(policy, "/p.S/M", EDP)
    policy.check("/p.T/M", EDP)


@pytest.mark.parametrize("key", ["", "/p.S", "p.S/M", "/p.S/M/X", "//M"])
def test_malformed_keys_are_rejected(key: str) -> None:
    with pytest.raises(ValueError):
        AuthorizationPolicy({key: ANY_AUTHENTICATED})
