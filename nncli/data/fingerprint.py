"""Content fingerprints of the files a data config reads: the SHA-256 of each, recorded in a checkpoint at training
time, so a file given to eval later can be told to be the same data (and its recorded split rebuilt) or not."""

import hashlib
import os

from nncli.data.builtin import BUILTINS
from nncli.data.files import FILE_KEYS, file_missing
from nncli.errors import DataError


def file_sha256(path, what="data file", chunk_size=1 << 20):
    """Hex SHA-256 of the bytes of the file at `path`, read in chunks (memory stays bounded whatever its size);
    `what` names the file in the error for a missing or unreadable one."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                digest.update(chunk)
    except FileNotFoundError:
        raise file_missing(path, what) from None
    except OSError as e:
        raise DataError(f"cannot read {what} {path}: {e.strerror or e}") from None
    return digest.hexdigest()


def data_fingerprint(data_cfg):
    """{data key: SHA-256} for every file `data_cfg` names (source, labels, val_source, …); a built-in has none.

    The trainer records it as meta["data_sha256"]; `{"source": "9f86d0…"}` for a CSV without separate splits.
    """
    files = {key: getattr(data_cfg, key, None) for key in FILE_KEYS}
    return {
        key: file_sha256(os.fspath(path), "labels file" if key.endswith("labels") else "data file")
        for key, path in files.items()
        if path is not None and not (key == "source" and os.fspath(path) in BUILTINS)
    }
