"""One simulation at a time in a run directory: an exclusive lock held for the whole run.

:class:`RunLock` takes ``fcntl.flock`` on ``OUT/simulate.lock`` and holds it on an open file
descriptor until the simulation ends. The kernel drops the lock when the process exits, so a
simulation killed by ``kill -9`` or a crash never leaves a lock behind that blocks the next
one. The file stays empty and is never replaced (another inode would be another lock); the
run's manifest lists it like every other file, so taking the lock changes nothing a
verification checks. The holder's pid comes from the kernel's lock table (``/proc/locks``),
where there is one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from gpt2guard.errors import GuardError

LOCK_NAME = "simulate.lock"


def _holder(path: Path) -> str:
    """Who holds the lock on ``path``, from the kernel's lock table (best effort)."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            table = f.read().splitlines()
    except OSError:
        return "another process"
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table:
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == want:
            return f"pid {parts[4]}"
    return "another process"


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
            return _holder(path)
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
            os.close(fd)
            raise GuardError(f"{self.out} is in use by another simulation ({_holder(self.path)}); wait for it to "
                             "end or use another --out") from None
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the next simulation in."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
