"""TensorBoard event files of a run (output.tensorboard: true), in RUN_DIR/tensorboard/.

Each completed epoch is one event at step = epoch, holding every scalar of its metrics row (train_*, val_*, lr,
seconds), the per-layer diagnostics (layers/W1/grad_norm, …, with train.diagnostics) and a histogram of every
parameter and its gradient as of the epoch's last step (weights/W1, gradients/W1, …, gamma_i and beta_i with a
norm). The resolved config is text at step 0 (and again at the step a resume changed it). Seed studies and sweeps
add the run's hyperparameters and final metrics for the HParams view (`log_hparams`, a file of its own).

Resume appends without duplicating a step. An epoch's event is written and fsynced before its checkpoint commits,
so the events of every committed epoch are on disk, and a run stopped between the two holds the event of an epoch it
trains again. A resume therefore rewrites the event file with the committed epochs only (metrics.jsonl, which resume
has just checked against checkpoint.npz, says which), and an epoch whose event is missing (the directory deleted,
a damaged file, tensorboard turned on later) gets its scalars from its metrics row. Records are read bounded: a
record longer than what is left of its file or MAX_RECORD, or whose length fails its checksum, ends the reading.

The protocol buffers come from tensorboardX (the `tensorboard` extra), imported only when a run asks for them.
"""

import math
import os
import stat
import struct
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from nncli.config import dump_config_yaml
from nncli.errors import OutputError, require
from nncli.training.atomic import atomic_write, check_target, write_failed

LOG_DIR = "tensorboard"
EVENTS = "events.out.tfevents.0-run.nncli"  # the run's events; the hparams file sorts after it
HPARAMS = "events.out.tfevents.1-hparams.nncli"
MAX_RECORD = 1 << 20  # an epoch's event is a few kB (each histogram has BINS buckets, whatever the layer's size)
BATCH = 16 << 20  # records checked at once (padded to the longest of them)
LONG = 1 << 16  # a record longer than this is checked on its own
BINS = 30
STATUS = {"completed": "STATUS_SUCCESS", "early_stopped": "STATUS_SUCCESS", "pruned": "STATUS_SUCCESS"}


def _proto(name):
    """A tensorboardX protocol buffer module (event_pb2, summary_pb2, …), or MissingExtra naming the extra."""
    return require(f"tensorboardX.proto.{name}", "tensorboard", "output.tensorboard")


def _crc(data):
    from tensorboardX.crc32c import crc32c

    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF  # TFRecord's masked CRC-32C


def _record(event):
    """`event` framed as a TFRecord: length, its checksum, the serialized event, its checksum."""
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _crc(header)) + data + struct.pack("<I", _crc(data))


def _records(path):
    """The serialized events of the TFRecord file `path`, up to the first cut or damaged record; read in batches of
    about MAX_RECORD bytes, each record's length checked against what is left of the file before it is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    with open(fd, "rb") as f:
        size = os.fstat(fd).st_size if stat.S_ISREG(os.fstat(fd).st_mode) else 0
        batch, crcs, ended = [], [], False
        while not ended:
            header = f.read(12)
            ended = len(header) < 12
            if not ended:
                (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
                ended = crc != _crc(header[:8]) or length > min(MAX_RECORD, size - f.tell() - 4)
            if not ended:
                batch.append(f.read(length))
                crcs.append(struct.unpack("<I", f.read(4))[0])
            if ended or len(batch) * max(map(len, batch)) > BATCH:
                good = _checksums(batch) == np.array(crcs, np.uint32)
                yield from batch[: len(batch) if good.all() else int(np.argmin(good))]
                ended = ended or not good.all()
                batch, crcs = [], []


def _checksums(blobs):
    """The masked CRC-32C of each bytes object in `blobs`, computed for all of them at once (byte j of every blob per
    step, shortest first: a resume checks a whole event file in a fraction of a second, not byte by byte)."""
    from tensorboardX.crc32c import CRC_TABLE

    if any(len(b) > LONG for b in blobs):  # checked one by one: padded to a long one, every short one is as wide
        out = np.array([_crc(b) if len(b) > LONG else 0 for b in blobs], np.uint32)
        short = [i for i, b in enumerate(blobs) if len(b) <= LONG]
        out[short] = _checksums([blobs[i] for i in short])
        return out
    table = np.array(CRC_TABLE, np.uint32)
    order = np.argsort([len(b) for b in blobs], kind="stable")
    lengths = np.array([len(blobs[i]) for i in order], np.int64)
    width = int(lengths[-1]) if len(blobs) else 0
    bytes_ = np.zeros((len(blobs), width), np.uint8)
    for row, i in enumerate(order):
        bytes_[row, : lengths[row]] = np.frombuffer(blobs[i], np.uint8)
    crc = np.full(len(blobs), 0xFFFFFFFF, np.uint32)
    for j in range(width):
        k = int(np.searchsorted(lengths, j, side="right"))  # the blobs longer than j bytes
        crc[k:] = table[(crc[k:] ^ bytes_[k:, j]) & 0xFF] ^ (crc[k:] >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    masked = ((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)
    out = np.empty_like(masked)
    out[order] = masked
    return out


def _event_files(log_dir):
    """Every event file in `log_dir`, sorted as TensorBoard reads them."""
    return sorted(p for p in log_dir.iterdir() if "tfevents" in p.name and not p.is_dir())


class TensorBoardLog:
    """Writes a Trainer's epochs to RUN_DIR/tensorboard/: `epoch(row)` after each completed epoch."""

    def __init__(self, trainer):
        self.net = trainer.net
        self.event_pb2, self.summary_pb2 = _proto("event_pb2"), _proto("summary_pb2")
        self.log_dir = _log_dir(trainer.run_dir)
        self.path = self.log_dir / EVENTS
        config = dump_config_yaml(trainer.config)
        kept, text = [self._event_record(file_version="brain.Event:2")], None
        resumed = (trainer.run_dir / "checkpoint.npz").exists()  # its rows are the epochs committed
        if resumed:
            text = self._committed(trainer.rows, kept)
        if text != _preformatted(config):
            kept.append(self._text("config", config, len(trainer.rows)))
        atomic_write(self.path, lambda f: f.write(b"".join(kept)))  # a fresh run replaces what an earlier left
        for old in _event_files(self.log_dir):
            if old.name != EVENTS and (old.name != HPARAMS or not resumed):  # a study rewrites its hparams at the end
                old.unlink()
        check_target(self.path)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        except OSError as e:
            raise write_failed(self.path, e) from None
        self.file = open(fd, "ab")

    def _committed(self, rows, kept):
        """Add to `kept` the records to keep of a resumed run's event files: every event of the committed epochs
        (`rows`), and their scalars from `rows` where an epoch's event is missing; return the last config text."""
        text, last, done = None, 0, len(rows)
        for path in _event_files(self.log_dir) if self.log_dir.is_dir() else ():
            if path.name == HPARAMS:
                continue
            for data in _records(path):
                event = self.event_pb2.Event()
                try:
                    event.ParseFromString(data)
                except Exception:  # protobuf's DecodeError: a garbled record ends the file like a cut one
                    break
                if event.step > done or event.step < last:
                    break  # an epoch not committed (its events come last), or another run's file
                if event.HasField("summary"):
                    kept.append(_record(event))
                    last = event.step
                    for value in event.summary.value:
                        if value.tag == "config/text_summary":
                            text = value.tensor.string_val[0].decode("utf-8", "replace")
        kept += [_record(self._epoch_event(row, histograms=False)) for row in rows[last:]]
        return text

    def _event_record(self, step=0, **fields):
        return _record(self.event_pb2.Event(wall_time=time.time(), step=step, **fields))

    def _text(self, tag, text, step):
        """A text event (the config), shown as preformatted text by TensorBoard's Text tab."""
        summary_pb2 = self.summary_pb2
        plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
        tensor = _proto("tensor_pb2").TensorProto(dtype=7, string_val=[_preformatted(text).encode()])  # DT_STRING
        tensor.tensor_shape.dim.add(size=1)
        value = summary_pb2.Summary.Value(
            tag=f"{tag}/text_summary", metadata=summary_pb2.SummaryMetadata(plugin_data=plugin), tensor=tensor
        )
        return self._event_record(step, summary=summary_pb2.Summary(value=[value]))

    def _epoch_event(self, row, histograms=True):
        """One epoch as one event: the row's scalars and per-layer diagnostics, then the histograms."""
        Value = self.summary_pb2.Summary.Value
        values = [Value(tag=k, simple_value=v) for k, v in row.items() if k != "epoch" and _number(v)]
        for layer, entry in (row.get("layers") or {}).items():
            values += [Value(tag=f"layers/{layer}/{k}", simple_value=v) for k, v in entry.items() if _number(v)]
        if histograms:
            for name, param in self.net.params.items():
                values += [
                    Value(tag=f"{kind}/{name}", histo=h)
                    for kind, array in (("weights", param), ("gradients", self.net.grads[name]))
                    if (h := self._histogram(array)) is not None
                ]
        summary = self.summary_pb2.Summary(value=values)
        return self.event_pb2.Event(wall_time=time.time(), step=row["epoch"], summary=summary)

    def _histogram(self, array):
        """TensorBoard's histogram of the finite values of `array` (None when it has none): BINS equal bins between
        the least and the greatest value, each bucket named by its right edge, after an empty one for the left edge."""
        values = array.ravel().astype(np.float64)
        if not np.isfinite(values).all():
            values = values[np.isfinite(values)]
        if not values.size:
            return None
        lo, hi = values.min(), values.max()
        if hi > lo:  # np.histogram's equal bins, counted 10x faster
            start, width = lo, (hi - lo) / BINS
            counts = np.bincount(np.minimum(((values - lo) / width).astype(np.intp), BINS - 1), minlength=BINS)
        else:  # every value the same: one bucket around it
            start, width, counts = lo - 0.5, 1.0, np.array([values.size])
        edges = start + width * np.arange(len(counts) + 1)
        return self.summary_pb2.HistogramProto(
            min=lo,
            max=hi,
            num=values.size,
            sum=values.sum(),
            sum_squares=values @ values,
            bucket_limit=edges.tolist(),
            bucket=[0.0, *counts.tolist()],
        )

    def epoch(self, row):
        """Append the event of the completed epoch `row` and make it durable, before its checkpoint commits."""
        record = _record(self._epoch_event(row))
        try:
            self.file.write(record)
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as e:
            raise write_failed(self.path, e) from None

    def close(self):
        with suppress(OSError):  # an event that could not be flushed is of an epoch not committed: resume rewrites it
            self.file.close()


@contextmanager
def tensorboard_log(trainer):
    """The run's TensorBoardLog while training when config.output.tensorboard is true, else None."""
    log = TensorBoardLog(trainer) if trainer.config.output.tensorboard else None
    try:
        yield log
    finally:
        if log is not None:
            log.close()


def log_hparams(run_dir, hparams, summary):
    """Write the hyperparameters of the run in `run_dir` (a seed study's seed, a sweep trial's swept keys and seed)
    and its final metrics for TensorBoard's HParams view, replacing any written before. `summary`: the run's."""
    summary_mod = require("tensorboardX.summary", "tensorboard", "output.tensorboard")
    api_pb2, event_pb2 = _proto("api_pb2"), _proto("event_pb2")
    final = summary.get("final") or {}
    metrics = {k: v for k, v in final.items() if k not in ("epoch", "seconds") and _number(v)}
    values = {k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v) for k, v in hparams.items()}
    experiment, start, end = summary_mod.hparams(values, metrics)
    plugin_data = end.value[0].metadata.plugin_data
    content = _proto("plugin_hparams_pb2").HParamsPluginData.FromString(plugin_data.content)
    content.session_end_info.status = api_pb2.Status.Value(STATUS.get(summary.get("status"), "STATUS_FAILURE"))
    plugin_data.content = content.SerializeToString()
    now, step = time.time(), final.get("epoch", 0)
    events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2")]
    events += [event_pb2.Event(wall_time=now, step=step, summary=s) for s in (experiment, start, end)]
    atomic_write(_log_dir(run_dir) / HPARAMS, lambda f: f.write(b"".join(_record(e) for e in events)))


def _log_dir(run_dir):
    """RUN_DIR/tensorboard/, created; refused when it is a link or not a directory."""
    path = Path(run_dir) / LOG_DIR
    check_target(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"cannot write {path}: it exists and is not a directory (TensorBoard's event files go there)")
    try:
        path.mkdir(exist_ok=True)
    except OSError as e:
        raise write_failed(path, e) from None
    return path


def _preformatted(text):
    """`text` indented four spaces, so that TensorBoard's Markdown shows it as it is written."""
    return "".join(f"    {line}\n" for line in text.splitlines())


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isinf(value)
