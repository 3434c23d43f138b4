"""Method patterns shared by policies and retry configs: `/pkg.Service/Method` or `pkg.Service`."""

from __future__ import annotations


def split_method_pattern(pattern: str) -> tuple[str, str | None]:
    """`/pkg.S/M` -> (`pkg.S`, `M`); `pkg.S` -> (`pkg.S`, None); raises `ValueError` otherwise."""
    parts = pattern.split("/")
    if len(parts) == 3 and parts[0] == "" and parts[1] and parts[2]:
        return parts[1], parts[2]
    if len(parts) == 1 and pattern:
        return pattern, None
    raise ValueError(f"{pattern!r} is neither '/pkg.Service/Method' nor 'pkg.Service'")
