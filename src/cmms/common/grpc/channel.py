"""Client channels: mutual TLS, keepalive, message size limits and retries of idempotent methods."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from cmms.common.grpc.names import split_method_pattern
from cmms.common.grpc.tls import ClientTls

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC service-config retry policy: attempts, exponential backoff, retryable codes."""

    max_attempts: int = 5
    initial_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 5.0
    backoff_multiplier: float = 2.0
    retryable_codes: Sequence[grpc.StatusCode] = (grpc.StatusCode.UNAVAILABLE,)

    def as_service_config(self) -> dict[str, Any]:
        """The `retryPolicy` object of a gRPC service config."""
        return {
            # gRPC caps attempts at 5 whatever is asked.
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_seconds}s",
            "maxBackoff": f"{self.max_backoff_seconds}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": [code.name for code in self.retryable_codes],
        }


@dataclass(frozen=True)
class ChannelSettings:
    """Channel tuning; defaults suit the long-lived streams between parties."""

    target_name_override: str | None = None
    idempotent_methods: Sequence[str] = ()
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000


def _method_config_name(pattern: str) -> dict[str, str]:
    service, method = split_method_pattern(pattern)
    return {"service": service} if method is None else {"service": service, "method": method}


def retry_service_config(methods: Iterable[str], policy: RetryPolicy) -> str:
    """A service config JSON retrying `methods` under `policy`; others are never retried."""
    names = [_method_config_name(m) for m in methods]
    if not names:
        return json.dumps({})
    config = {"methodConfig": [{"name": names, "retryPolicy": policy.as_service_config()}]}
    return json.dumps(config)


def channel_options(settings: ChannelSettings) -> list[tuple[str, Any]]:
    """gRPC channel arguments for `settings`."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.enable_retries", 1),
        (
            "grpc.service_config",
            retry_service_config(settings.idempotent_methods, settings.retry_policy),
        ),
    ]
    if settings.target_name_override is not None:
        options.append(("grpc.ssl_target_name_override", settings.target_name_override))
    return options


def secure_channel(
    target: str, tls: ClientTls, settings: ChannelSettings | None = None
) -> grpc.aio.Channel:
    """An aio channel to `target` (`host:port`) presenting `tls`'s client certificate.

    Set `settings.target_name_override` when the server certificate names another host than
    `target` (e.g. `localhost` for a server reached by IP).
    """
    chosen = settings or ChannelSettings()
    return grpc.aio.secure_channel(target, tls.credentials(), options=channel_options(chosen))
