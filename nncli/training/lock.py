"""The run directory's lock: one training run per directory at a time."""

import os
import stat

from nncli.errors import Hint, RunError
from nncli.training.rundir import make_run_dir


class RunLock:
    """One run per directory at a time: an exclusive flock on RUN_DIR/.lock.

    The operating system drops the lock when the process exits, even after kill -9, so a crash never leaves the
    directory locked; the file itself is removed on a clean release. It is opened without following a symbolic
    link (a .lock linked to a file of the user's never gets a PID written into it).
    """

    def __init__(self, run_dir):
        import fcntl

        self.path = make_run_dir(run_dir) / ".lock"
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise RunError(
                    f"{run_dir} is in use by a training run (pid {holder}) until it finishes", hints=(Hint.ELSEWHERE,)
                ) from None
            if self._still_at_path(fd):
                break
            os.close(fd)  # locked a file its holder removed as it let go: lock the one at the path now
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._file = os.fdopen(fd, "r+b", buffering=0)  # a file object: dropping the lock unreleased closes it too

    def _open(self):
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as e:
            if os.path.islink(self.path):
                raise RunError(f"{self.path} is a symbolic link; nncli never writes through one: remove it") from None
            raise RunError(f"{self.path}: cannot open the run's lock ({e.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunError(f"{self.path} is not a regular file (a FIFO, a device or a socket): remove it")
        return fd

    def _still_at_path(self, fd):
        try:
            here = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self):
        """Remove .lock while still holding it, then let go: a process that locks the removed file afterwards sees
        it is no longer at the path and takes the new one, so two can never both hold the directory."""
        if getattr(self, "_file", None) is not None and not self._file.closed:
            self.path.unlink(missing_ok=True)
            self._file.close()
