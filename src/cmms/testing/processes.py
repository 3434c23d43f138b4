"""Test kit for end-to-end tests that run `cmms` commands as processes: the command, and
which processes are still alive (to prove nothing outlives a test)."""

from __future__ import annotations

import sys
from pathlib import Path


def cmms(*args: str) -> list[str]:
    beside = Path(sys.executable).with_name("cmms")
    if beside.is_file():
        return [str(beside), *args]
    return [sys.executable, "-c", "from cmms.deploy.cli import main; main()", *args]


def command_line(pid: int) -> str | None:
    """The command line of a live (non-zombie) process; None if it is gone."""
    proc = Path("/proc") / str(pid)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return None
    return None if state == "Z" else command


def processes_mentioning(*texts: str) -> list[int]:
    """Live processes whose command line contains every one of `texts`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            command = command_line(int(entry.name))
            if command is not None and all(t in command for t in texts):
                found.append(int(entry.name))
    return found
