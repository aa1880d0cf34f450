"""Arrays read from files in bounded memory: NPY (a file, or a member of an NPZ zip) and IDX (optionally gzipped).

Every size a file declares (an NPY header's shape and dtype, a zip member's size, an IDX header's dimensions) is
checked against the bytes the file really holds and against `memory_budget()` before anything is allocated or
decompressed, and decompression runs in chunks that stop at the declared size. Whatever a reader raises on a
malformed file becomes an UnreadableArray, a DataError stating the problem; callers prefix the file they read.
Nothing is ever unpickled.
"""

import ast
import contextlib
import gzip
import math
import mmap
import os
import resource
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from nncli.errors import DataError

MEMORY_FRACTION = 0.5  # of the memory this process may use: the default budget for one file or generated dataset
BUDGET_ENV = "NNCLI_MEMORY_BUDGET"  # bytes, or with a K/M/G/T suffix, instead of the default
READ_CHUNK = 1 << 20
MAX_HEADER = 10_000  # characters of an NPY header, as numpy's own limit
NPY_MAGIC = b"\x93NUMPY"
NPY_VERSIONS = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_MAX_DIMS = 16
DEFLATE_RATIO = 1032  # the most deflate can expand: a gzip file of n bytes holds at most about 1032·n
# What the standard library and numpy raise on malformed input; each becomes an UnreadableArray.
MALFORMED = (
    ValueError,
    TypeError,
    SyntaxError,
    tokenize.TokenError,
    RecursionError,
    MemoryError,
    OverflowError,
    KeyError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    struct.error,
    NotImplementedError,
    RuntimeError,
)


class UnreadableArray(DataError):
    """A file (or one `member` of an archive) that cannot be read as the arrays it claims to hold.

    `problem` says what is wrong, without the file name; `pickled` marks an object array (refused, never unpickled).
    """

    def __init__(self, problem, member=None, pickled=False):
        self.problem, self.member, self.pickled = problem, member, pickled
        super().__init__(f"array {member!r} {problem}" if member is not None else problem)


def gib(nbytes):
    """A byte count for people: '745.1 GiB', '12.0 MiB'."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:,.1f} {unit}"
    return f"{nbytes} bytes"


def usable_memory():
    """The bytes this process may use: physical memory, a cgroup limit or an address-space limit, whichever is least."""
    limits = []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limits.append(int(f.read().strip()))
    except (OSError, ValueError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    return min(limits) if limits else 2**40


def memory_budget():
    """(bytes, why): how much one file or generated dataset may take in memory.

    NNCLI_MEMORY_BUDGET when set (e.g. 512M, 4G), else MEMORY_FRACTION of `usable_memory()`.
    """
    text = os.environ.get(BUDGET_ENV, "").strip()
    if text:
        scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1].upper(), 1)
        digits = text[:-1] if scale > 1 else text
        if not digits.isdigit() or len(digits) > 18:
            raise DataError(f"{BUDGET_ENV}={text!r} is not a byte count; give one like 512M, 4G or 1000000")
        return int(digits) * scale, f"{BUDGET_ENV}={text}"
    have = usable_memory()
    return int(have * MEMORY_FRACTION), f"{MEMORY_FRACTION:.0%} of the {gib(have)} this process may use"


def check_budget(nbytes, what, error=UnreadableArray):
    """Refuse `what`, needing `nbytes`, when that exceeds the memory budget: `error` naming both, raised before
    anything is allocated."""
    budget, why = memory_budget()
    if nbytes > budget:
        raise error(f"{what} needs {gib(nbytes)}, more than the memory budget of {gib(budget)} ({why})")


def read_npy_header(f, size):
    """(dtype, shape, fortran_order, data bytes) of the .npy stream `f` holding `size` bytes, left after its header.

    Refuses a header that is malformed, declares object (pickled) values, or declares more data than `size` holds.
    """
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != NPY_MAGIC:
        raise UnreadableArray("is not a .npy array (not a NumPy file: it does not start with the .npy signature)")
    version = (magic[6], magic[7])
    if version not in NPY_VERSIONS:
        raise UnreadableArray(f"has .npy format version {version[0]}.{version[1]}; readable are 1.0, 2.0 and 3.0")
    length_type, encoding = NPY_VERSIONS[version]
    raw = f.read(struct.calcsize(length_type))
    length = struct.unpack(length_type, raw)[0] if len(raw) == struct.calcsize(length_type) else -1
    if not 0 <= length <= MAX_HEADER:
        raise UnreadableArray(f"has a .npy header length of {length}; at most {MAX_HEADER} is allowed")
    text = f.read(length)
    if len(text) < length:
        raise UnreadableArray("is cut short inside its .npy header")
    try:
        header = ast.literal_eval(text.decode(encoding))
    except MALFORMED as e:
        raise UnreadableArray(f"has a malformed .npy header ({type(e).__name__})") from None
    dtype, shape, fortran = _header_fields(header)
    nbytes = math.prod(shape) * dtype.itemsize
    held = size - 8 - len(raw) - length
    if nbytes > held:
        raise UnreadableArray(
            f"declares shape {shape} of {dtype} ({gib(nbytes)}) but holds only {gib(max(held, 0))} of data"
        )
    return dtype, shape, fortran, nbytes


def _header_fields(header):
    """(dtype, shape, fortran_order) of a parsed NPY header dict, each checked."""
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise UnreadableArray("has a .npy header that is not {'descr': …, 'fortran_order': …, 'shape': …}")
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(n) is int and 0 <= n < 2**62 for n in shape) or len(shape) > 32:
        raise UnreadableArray("has a .npy header whose shape is not a tuple of at most 32 non-negative integers")
    if not isinstance(fortran, bool):
        raise UnreadableArray("has a .npy header whose fortran_order is not True or False")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except MALFORMED:
        raise UnreadableArray("has a .npy header whose descr is not a dtype") from None
    if dtype.hasobject:
        raise UnreadableArray("holds Python objects (dtype=object)", pickled=True)
    if dtype.subdtype is not None or math.prod(shape) >= 2**62 // max(1, dtype.itemsize):
        raise UnreadableArray(f"has a .npy header declaring an unusable array ({shape} of {dtype})")
    return dtype, shape, fortran


def read_exactly(f, dtype, count, promised):
    """`count` values of `dtype` read from `f` in chunks into one new array; a short stream is refused (`promised`
    says what the header promised)."""
    array = np.empty(count, dtype)
    buffer = memoryview(array.view(np.uint8)) if count and dtype.itemsize else memoryview(b"")
    done = 0
    while done < len(buffer):
        n = f.readinto(buffer[done : done + READ_CHUNK])
        if not n:
            raise UnreadableArray(f"{promised} but the data ends after {done} bytes")
        done += n
    return array


def _shaped(array, shape, fortran):
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def load_npy(path):
    """The array in the .npy file at `path`, read into memory within the memory budget."""
    try:
        with open(path, "rb") as f:
            dtype, shape, fortran, nbytes = read_npy_header(f, os.fstat(f.fileno()).st_size)
            check_budget(nbytes, f"its array {shape} of {dtype}")
            array = read_exactly(f, dtype, math.prod(shape), f"declares {gib(nbytes)}")
    except UnreadableArray:
        raise
    except MALFORMED as e:
        raise UnreadableArray(f"cannot be read ({type(e).__name__}: {e})") from None
    return _shaped(array, shape, fortran)


def open_npy(path):
    """The array in the .npy file at `path`, memory-mapped read-only (never copied, so it may exceed the budget)."""
    try:
        with open(path, "rb") as f:
            dtype, shape, fortran, _ = read_npy_header(f, os.fstat(f.fileno()).st_size)
            offset = f.tell()
        if math.prod(shape) == 0:
            return np.empty(shape, dtype)
        return np.memmap(path, dtype, "r", offset, shape, "F" if fortran else "C")
    except UnreadableArray:
        raise
    except MALFORMED as e:
        raise UnreadableArray(f"cannot be read ({type(e).__name__}: {e})") from None


def npz_names(archive):
    """The array names of an open zip as np.load gives them: member names without their '.npy'."""
    return [name[:-4] if name.endswith(".npy") else name for name in archive.namelist()]


def load_npz(path, names=None):
    """{name: array} for `names` (default every member) of the .npz at `path`, within the memory budget.

    Member sizes are checked against the budget (all together) before any is decompressed; each member is then read
    in chunks that stop at its declared size, and must hold exactly the array its header declares.
    """
    member = None
    try:
        with zipfile.ZipFile(path) as archive:
            infos = dict(zip(npz_names(archive), archive.infolist()))
            wanted = list(infos) if names is None else [key for key in names if key in infos]
            check_budget(sum(infos[key].file_size for key in wanted), f"its {len(wanted)} array(s), decompressed,")
            arrays = {}
            for member in wanted:
                with archive.open(infos[member]) as f:
                    arrays[member] = _read_member(f, infos[member].file_size)
    except UnreadableArray as e:
        raise UnreadableArray(e.problem, e.member or member, e.pickled) from None
    except MALFORMED as e:
        raise UnreadableArray(f"is truncated or corrupt ({type(e).__name__}: {e})", member) from None
    return arrays


def _read_member(f, size):
    """The array of one zip member of `size` bytes (decompressed), which must hold nothing else."""
    dtype, shape, fortran, nbytes = read_npy_header(f, size)
    if nbytes != size - f.tell():
        raise UnreadableArray(f"declares {gib(nbytes)} of data but its zip member holds {gib(size - f.tell())}")
    array = read_exactly(f, dtype, math.prod(shape), f"declares {gib(nbytes)}")
    f.read(1)  # at the member's end: zipfile checks the CRC
    return _shaped(array, shape, fortran)


def load_idx(path):
    """The array in an IDX file (optionally gzipped): magic 0 0 <type> <ndim>, ndim big-endian uint32 sizes, data."""
    gzipped = os.fspath(path).lower().endswith(".gz")
    try:
        with (gzip.open if gzipped else open)(path, "rb") as f:
            size = os.stat(path).st_size
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_TYPES or head[3] == 0:
                raise UnreadableArray(f"not an IDX file (its first bytes {head.hex()} are not 00 00 <type> <ndim>)")
            if head[3] > IDX_MAX_DIMS:
                raise UnreadableArray(f"declares {head[3]} dimensions; an IDX array here has 1 to {IDX_MAX_DIMS}")
            dims = f.read(4 * head[3])
            if len(dims) < 4 * head[3]:
                raise UnreadableArray("IDX header is cut short")
            shape = struct.unpack(f">{head[3]}I", dims)
            dtype = np.dtype(IDX_TYPES[head[2]])
            return _read_idx_data(f, shape, dtype, size, gzipped)
    except UnreadableArray:
        raise
    except MALFORMED as e:
        raise UnreadableArray(f"cannot be read ({type(e).__name__}: {e})") from None


def _read_idx_data(f, shape, dtype, size, gzipped):
    """The data of an IDX array of `shape` and `dtype`, checked against the file's `size` and the budget first."""
    if shape[0] == 0:
        raise UnreadableArray("holds no samples (its IDX header declares 0 of them)")
    nbytes = math.prod(shape) * dtype.itemsize
    promise = f"IDX header promises {'x'.join(map(str, shape))} values of {dtype.name} ({nbytes} bytes)"
    held = size - 4 - 4 * len(shape)
    if not gzipped and nbytes != held:
        raise UnreadableArray(f"{promise} but the file holds {held} bytes of data")
    if gzipped and nbytes > DEFLATE_RATIO * size:
        raise UnreadableArray(f"{promise}, more than a gzip file of {size} bytes can hold")
    check_budget(nbytes, f"its IDX array {'x'.join(map(str, shape))} of {dtype.name}")
    array = read_exactly(f, dtype, math.prod(shape), promise)
    if f.read(1):
        raise UnreadableArray(f"{promise} but the file holds more data")
    return array.reshape(shape)


def release_pages(X):
    """Unmap the pages a read-only memory-mapped X has read so far from this process (the file and the page cache
    keep them): a file larger than memory, read a chunk at a time, then keeps the process's resident memory bounded.
    Anything else (an array in memory, a writable map whose changes the pages may hold) is left alone."""
    mapping = getattr(X, "_mmap", None)
    if mapping is None or X.flags.writeable:
        return
    if hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)
