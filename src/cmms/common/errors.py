"""Errors shared by every role."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for; the CLI prints it as one line and exits non-zero."""

    exit_code = 2


class NotYetAvailableError(UserError):
    """The command exists but its implementation has not landed yet."""

    exit_code = 3
