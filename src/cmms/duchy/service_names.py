"""Full gRPC service names from generated modules (for policies and bindings)."""

from __future__ import annotations


def service_name(module: object, name: str) -> str:
    full_name: str = module.DESCRIPTOR.services_by_name[name].full_name  # type: ignore[attr-defined]
    return full_name


def method_name(module: object, service: str, method: str) -> str:
    return f"/{service_name(module, service)}/{method}"
