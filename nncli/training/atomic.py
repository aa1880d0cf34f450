"""Atomic file writes: a crash (even `kill -9`) at any moment leaves either the old file or the new one, never half.

Each write goes to a temporary file beside the target, is flushed and fsynced, then renamed over the
target with `os.replace` (atomic on POSIX and Windows). On any error the temporary file is removed.
Nothing is ever written through a symbolic link or over a FIFO, a device or a socket: such a target is refused.
A write that fails (a full disk, a read-only file system, an I/O error) is an OutputError naming the target.
"""

import json
import math
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from nncli.errors import Hint, OutputError


def _new_file_mode():
    """Permissions a plain `open(path, 'w')` would give (0o666 minus the umask); mkstemp alone gives 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory):
    """Make the rename itself durable across a power loss (POSIX only; Windows cannot open directories)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_target(path):
    """Raise OutputError when `path` is a symbolic link or exists as anything but a regular file or a directory
    (a FIFO, a device, a socket): nncli never writes through a link nor replaces a special file."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    if stat.S_ISLNK(mode):
        raise OutputError(f"cannot write {path}: it is a symbolic link, and nncli never writes through one")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OutputError(f"cannot write {path}: it is not a regular file (a FIFO, a device or a socket)")


def check_output(path, force=True, hints=(Hint.REPLACE, Hint.ELSEWHERE)):
    """Raise OutputError unless `path` can be written: its directory exists, it is not itself a directory, a
    symbolic link or a special file and, without `force`, it does not exist yet (nothing a user cares about is
    replaced unasked). `hints` say what the user can do about an existing file (the default: replace it, or write
    somewhere else).
    """
    path = Path(path)
    if not path.parent.is_dir():
        what = "is not a directory" if path.parent.exists() else "does not exist"
        raise OutputError(f"cannot write {path}: directory {path.parent} {what}")
    check_target(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory; give a file name")
    if path.exists() and not force:
        raise OutputError(f"{path} already exists", hints=hints)


def write_failed(path, error):
    """The OutputError for an OSError raised while writing `path` (ENOSPC, EROFS, EIO, …), naming the file."""
    return OutputError(f"cannot write {path}: {error.strerror or error} (errno {error.errno})")


def atomic_write(path, write):
    """Call `write(f)` on a binary temp file next to `path`, then move it onto `path` in one step.

    Raises OutputError (naming `path`) when its directory is missing, `path` is a directory, a symbolic link or a
    special file, or the write fails (a full disk, a read-only file system, an I/O error); the old file then stays.
    """
    path = Path(path)
    check_target(path)
    if path.is_dir():
        check_output(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    except (FileNotFoundError, NotADirectoryError):
        check_output(path)  # names the missing directory instead of the temporary file
        raise
    except OSError as e:
        raise write_failed(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode())
        check_target(path)  # a link put there while we wrote is not replaced either
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise write_failed(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data):
    """Replace `path` with `data` (bytes) atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text):
    """Replace `path` with `text`, UTF-8 encoded, atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def jsonable(obj):
    """A copy of `obj` that `json.dumps` writes as strict JSON.

    Non-finite floats (NaN, ±inf) become None, numpy scalars and arrays become Python numbers and
    lists, tuples become lists; dict keys are kept as they are.
    """
    if isinstance(obj, dict):
        return {key: jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path, obj):
    """Replace `path` with `obj` as indented JSON (non-finite floats written as null) atomically."""
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2) + "\n")


def atomic_save_npz(path, arrays):
    """Replace `path` with an uncompressed .npz holding `arrays` (name → ndarray) atomically.

    The name is used as given: unlike `np.savez(path)`, no '.npz' suffix is appended.
    """
    atomic_write(path, lambda f: np.savez(f, **arrays))
