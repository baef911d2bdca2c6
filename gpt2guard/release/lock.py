"""One simulation at a time in a run directory: an exclusive lock held for the whole run.

:class:`RunLock` takes ``fcntl.flock`` on ``OUT/simulate.lock`` and holds it on an open file
descriptor until the simulation ends. The kernel drops the lock when the process exits, so a
simulation killed by ``kill -9`` or a crash never leaves a lock behind that blocks the next
one. While the lock is held the file names its holder (pid, host, start time), which a
refused second simulation prints. The file is never replaced (that would give it another
inode and a second lock), only rewritten in place, and it stays after the run: the run's
manifest lists it like every other file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path

from gpt2guard.errors import GuardError

LOCK_NAME = "simulate.lock"


def _holder(fd: int) -> str:
    """Who holds the lock, as written in the lock file (best effort)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"pid {int(info['pid'])} on {info.get('host', '?')} since {info.get('started', '?')}"
    except (ValueError, KeyError, TypeError, OSError):
        return "a process that has not yet written its pid"


def lock_holder(out: str | Path) -> str | None:
    """The holder of ``OUT``'s simulation lock while a simulation runs there, else None."""
    path = Path(out) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """Hold ``OUT/simulate.lock`` exclusively; a second holder is refused with one line.

    Parameters
    ----------
    out : path
        The run directory (created when missing).

    Examples
    --------
    >>> with RunLock("runs/nano"):  # doctest: +SKIP
    ...     ...  # nothing else can simulate into runs/nano meanwhile
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock without waiting; GuardError naming the holder when it is taken."""
        if self.out.exists() and not self.out.is_dir():
            raise GuardError(f"{self.out} is not a directory")
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise GuardError(f"{self.out} is in use by another simulation ({holder}); wait for it to end "
                             "or use another --out") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        data = (json.dumps(info, sort_keys=True) + "\n").encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the next simulation in (the holder's line stays in the file)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
