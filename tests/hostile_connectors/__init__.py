"""Connectors that misbehave on purpose (programs run by the tests), and what the tests
need to watch their processes."""

from __future__ import annotations

from pathlib import Path

HOSTILE = Path(__file__).parent / "hostile.py"
FLAWED = Path(__file__).parent / "flawed.py"
SOLITARY = Path(__file__).parent / "solitary.py"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def group_has_live_members(pgid: int) -> bool:
    """Whether any live process is in process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
