"""Small result types: what execute() and listen() hand back."""

from __future__ import annotations

from dataclasses import dataclass

# Command tags whose last number is the count of rows the command touched.
_COUNTED = frozenset({"INSERT", "UPDATE", "DELETE", "SELECT", "MERGE", "COPY", "MOVE", "FETCH"})


@dataclass(frozen=True, slots=True)
class ExecuteResult:
    """The outcome of ``execute()``: the server's command tag and the rows it affected.

    ``status`` is PostgreSQL's tag (``"INSERT 0 3"``, ``"UPDATE 2"``, ``"CREATE TABLE"``);
    ``rowcount`` is the number of rows affected, or None for commands without one.
    """

    status: str
    rowcount: int | None

    @classmethod
    def from_status(cls, status: str) -> ExecuteResult:
        parts = status.split()
        rowcount = None
        if parts and parts[0] in _COUNTED and parts[-1].isdigit():
            rowcount = int(parts[-1])
        return cls(status=status, rowcount=rowcount)


@dataclass(frozen=True, slots=True)
class Notification:
    """One NOTIFY received by ``listen()``: its channel, payload and the sender's pid."""

    channel: str
    payload: str
    pid: int
