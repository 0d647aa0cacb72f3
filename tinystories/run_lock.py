"""A lock on a folder held for a whole run, so that two runs never share a request cache or an output folder.

``tinystories generate`` and ``tinystories evaluate`` hold one on their ``output_dir`` and their ``cache_dir``: a
second run on the same folder stops at once with a ``RunLockError`` that names the run holding it (pid, host,
command, start time), instead of paying again for every request the first has not cached yet.

The lock is an OS lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on ``FOLDER/.tinystories.lock``: the OS
releases it when its process ends, however it ends, so a lock left by a killed run is simply taken over; nothing is
guessed from pids or ages. The holder's details are in ``FOLDER/.tinystories.lock.json``, written atomically, for
the message only. Both files are removed when the run ends normally. Held within one process, the lock is
re-entrant for the thread holding it (a pipeline run inside an orchestrator holding the same folder); another
thread of the same process is refused like another process.
"""

from __future__ import annotations

import datetime
import errno
import json
import logging
import os
import re
import shlex
import socket
import sys
import threading
from collections.abc import Iterable

from .errors import RunLockError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_NAME = ".tinystories.lock"
OWNER_NAME = ".tinystories.lock.json"

#: Command-line values never written into the owner file (a secret may be passed as a flag).
_SECRET_FLAG = re.compile(r"^--?[\w-]*(key|token|secret|password)[\w-]*$", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")

_held: dict[str, list] = {}  # folder -> [thread id, depth, fd or None]: the locks this process holds
_held_guard = threading.Lock()
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)

logger = logging.getLogger(__name__)


def _public_command(argv: list[str]) -> str:
    """The command line with secrets blanked: values of ``--*key*``/``--*token*`` flags, URL credentials."""
    words, hide_next = [], False
    for word in argv:
        if hide_next:
            words.append("***")
            hide_next = False
            continue
        name, eq, _ = word.partition("=")
        if _SECRET_FLAG.match(name):
            words.append(f"{name}=***" if eq else word)
            hide_next = not eq
            continue
        words.append(_URL_CREDENTIALS.sub("***@", word))
    return shlex.join(words)


def _program() -> list[str]:
    """How this process was started: ``tinystories``, ``python -m tinystories``, ``script.py`` ..."""
    first = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    if os.path.basename(first) == "__main__.py":
        return ["python", "-m", os.path.basename(os.path.dirname(first))]
    return [os.path.basename(first)]


def _owner_info(purpose: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "purpose": purpose,
        "command": _public_command([*_program(), *sys.argv[1:]]),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def read_owner(folder: str) -> dict | None:
    """The details of the run holding (or that last held) ``folder``'s lock, if recorded."""
    try:
        with open(os.path.join(folder, OWNER_NAME), encoding="utf-8") as f:
            owner = json.load(f)
        return owner if isinstance(owner, dict) else None
    except (OSError, ValueError):
        return None


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` without waiting: False when another process holds it (other OS errors are raised)."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as e:
        if e.errno in _BUSY:
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.close(fd)


def _same_file(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a releasing run removes the lock file)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _busy_message(folder: str, purpose: str) -> str:
    owner = read_owner(folder)
    if owner is None:
        who = "another run (its details are not recorded)"
    else:
        who = (
            f"{owner.get('purpose', 'a run')} (pid {owner.get('pid')} on {owner.get('host')}, "
            f"started {owner.get('started')}: {owner.get('command')})"
        )
    return (
        f"{folder} is in use by {who}; two runs on one folder would pay twice for the same requests. Wait for it "
        f"to finish or stop it, or give this {purpose} run another folder (a killed run's lock is taken over at once)"
    )


def _acquire(folder: str, purpose: str) -> int | None:
    """Lock ``folder`` (created if needed) for this process; the lock file's descriptor (None: a file system
    without locks, on which the run goes on unlocked, with a warning)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    for _ in range(100):  # the lock file may be removed between our open and our lock: then lock the new one
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            locked = _try_lock(fd)
        except OSError as e:
            os.close(fd)
            logger.warning("Cannot lock %s (%s): running without a lock; start no second run on it", folder, e)
            return None
        if not locked:
            os.close(fd)
            raise RunLockError(_busy_message(folder, purpose))
        if fcntl is None or _same_file(fd, path):
            break
        _unlock(fd)
    else:
        raise RunLockError(f"could not lock {folder}: its lock file keeps changing")
    temporary = os.path.join(folder, f"{OWNER_NAME}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(_owner_info(purpose), f)
    os.replace(temporary, os.path.join(folder, OWNER_NAME))
    return fd


def _release(folder: str, fd: int | None) -> None:
    if fd is None:
        return
    for name in (OWNER_NAME, LOCK_NAME):  # removed while still locked: nobody reads a half-released lock
        try:
            os.remove(os.path.join(folder, name))
        except OSError:
            pass
    _unlock(fd)


class RunLock:
    """Hold the folders of a run for its duration: ``with RunLock(output_dir, cache_dir, purpose="generate"):``.

    ``None`` folders are skipped and a folder named twice is locked once. Entering raises ``RunLockError`` (one
    line, naming the holder) when another run holds any of them; the folders locked so far are released then.
    """

    def __init__(self, *folders: str | os.PathLike | None | Iterable, purpose: str = "run"):
        paths: list[str] = []
        for folder in folders:
            for item in [folder] if folder is None or isinstance(folder, (str, os.PathLike)) else folder:
                if item is not None:
                    path = os.path.realpath(os.fspath(item))
                    if path not in paths:
                        paths.append(path)
        self.folders = paths
        self.purpose = purpose
        self._entered: list[str] = []

    def __enter__(self) -> RunLock:
        try:
            for folder in self.folders:
                self._enter_one(folder)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _enter_one(self, folder: str) -> None:
        me = threading.get_ident()
        with _held_guard:
            held = _held.get(folder)
            if held is not None:
                if held[0] != me:
                    raise RunLockError(_busy_message(folder, self.purpose))
                held[1] += 1
            else:
                _held[folder] = [me, 1, _acquire(folder, self.purpose)]
        self._entered.append(folder)

    def __exit__(self, *exc_info) -> None:
        with _held_guard:
            while self._entered:
                folder = self._entered.pop()
                held = _held[folder]
                held[1] -= 1
                if held[1] == 0:
                    del _held[folder]
                    _release(folder, held[2])


__all__ = ["LOCK_NAME", "OWNER_NAME", "RunLock", "RunLockError", "read_owner"]
