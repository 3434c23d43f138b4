"""Raising gRPC errors from service code without a ServicerContext."""

from __future__ import annotations

from typing import NoReturn

import grpc


class StatusError(Exception):
    """An RPC outcome other than OK; the server guard turns it into the call's status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        if code == grpc.StatusCode.OK:
            raise ValueError("a StatusError cannot carry OK")
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def fail(code: grpc.StatusCode, message: str) -> NoReturn:
    """End the current RPC with `code` and `message`."""
    raise StatusError(code, message)
