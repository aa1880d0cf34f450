"""User-facing error types: one per kind of bad input, turned into exit code 2 at the CLI edge."""

import enum
import importlib


def show_value(value):
    """A short, readable rendering of a user's value for an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        try:
            return f"a {len(str(abs(value)))}-digit number"
        except ValueError:
            return "a number with thousands of digits"
    try:
        text = repr(value)
    except ValueError:
        return "a value with a number too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


class Hint(enum.Enum):
    """Something a user can do about an error, as data: the library names the action, each front end words it.

    The value is the Python API's wording (a keyword argument of the function that raised); the CLI words the
    same action with its own flag names (`cli.app.HINTS`), so no library message spells a command-line flag.
    """

    REPLACE = "pass force=True to replace it"
    ACCEPT_CHANGES = "pass force=True to accept the changed keys"
    ELSEWHERE = "give another output path to write somewhere else"
    ANOTHER_PATH = "give another path"
    RESUME = "pass resume=True to continue it"
    START_FRESH = "start it without resume"
    TRAIN_OR_RESUME = "pass a config file, or resume a run directory"
    SEEDS = "pass study_config to resume it as a seed study"
    DATA_FILE = "pass a data file"
    LABELS_FILE = "pass a labels file"
    SPLIT = "choose another split"
    WHOLE_FILE = "pass split=None to evaluate the whole file"
    OWN_SPLIT = "pass no data_path to evaluate the checkpoint's own split of its training data"
    WHERE_TRAINED = "run from where it was trained"
    TEXT_SUMMARY = "use the terminal summary (sparklines), which needs no matplotlib"
    START_SEED_STUDY = "start the seed study without resume"
    RESUME_WITHOUT_SEEDS = "resume that run on its own, without seeds"


class NncliError(Exception):
    """Base class for errors a user can act on; the message says what is wrong and what is allowed.

    `hints` are what the user can do (`Hint`s); `str()` appends them in the Python API's words, `render(words)`
    in a front end's own (a dict from Hint to text). `head` names the kind of error (bad data, a run directory, …);
    a front end shows it before the message (`error: run directory: …`), `str()` leaves it out. None: the message
    names its kind itself (a ConfigError's "invalid config …").
    """

    head = None

    def __init__(self, message="", *, hints=()):
        super().__init__(message)
        self.message, self.hints = str(message), tuple(hints)

    def render(self, words=None):
        """The message followed by the hints, each worded by `words` (default: the Python API's wording)."""
        said = [(words or {}).get(hint, hint.value) for hint in self.hints]
        return self._join(said) if said else self.message

    def _join(self, said):
        return f"{self.message}; {' or '.join(said)}"

    def __str__(self):
        return self.render()


class UsageError(NncliError):
    """A command or function called wrongly: an argument missing, options that exclude each other, a bad choice."""

    head = "usage"


class ConfigError(NncliError):
    """A config file, sweep file or override is invalid. `problems` lists one line per bad key."""

    def __init__(self, problems, source=None, what="config", *, hints=()):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        head = f"invalid {what} {source}" if source else f"invalid {what}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems), hints=hints)

    def _join(self, said):
        return f"{self.message}\n  {' or '.join(said)}"


class DataError(NncliError):
    """A data file or dataset option is unusable (missing file, bad value, wrong shape)."""

    head = "bad data"


class DataFileMissing(DataError):
    """A data or labels file named by a config or an option does not exist."""


class LabelsMissing(DataError):
    """Features without labels (.npy or IDX) where labels are needed, and no labels file is given."""


class CheckpointError(NncliError):
    """A checkpoint file is missing, corrupt, hostile, or from an incompatible version."""

    head = "bad checkpoint"


class RunError(NncliError):
    """A run directory cannot be used: in use by another run, or nothing to resume there."""

    head = "run directory"


class RunTaken(RunError, ConfigError):
    """output.dir already holds a run and replacing it was not asked for. A RunError by kind, and a ConfigError too
    (about output.dir), as it was raised before it had a kind of its own."""

    def __init__(self, message, *, hints=()):
        NncliError.__init__(self, message, hints=hints)
        self.problems, self.source = [self.message], None

    _join = NncliError._join


class ResumeRefused(RunError, ConfigError):
    """A resume whose config differs from the run's own in keys a resume may not change. `changes` are
    (key, the run's value, the new value); the message lists each. A ConfigError too, as it was before."""

    head = "cannot resume"

    def __init__(self, run_dir, changes, allowed, *, hints=()):
        self.changes = list(changes)
        self.problems = [
            f"{key}: differs from the run being resumed (was {show_value(old)}, now {show_value(new)})"
            for key, old, new in self.changes
        ]
        self.source = run_dir
        lines = "\n".join(f"  {p}" for p in self.problems)
        NncliError.__init__(
            self,
            f"{run_dir}: the config differs from the run's own:\n{lines}\n  only {allowed} may change on resume",
            hints=hints,
        )


class OutputError(NncliError):
    """An output file cannot be written where asked: its directory is missing, it is a directory, or it exists
    and replacing it was not asked for."""

    head = "cannot write"


class MissingExtra(NncliError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    head = "missing dependency"


def require(module, extra, purpose, hint=""):
    """Import an optional dependency, or raise MissingExtra naming the pip extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{purpose} needs {module.split('.')[0]}: pip install 'nncli[{extra}]'{hint}") from None
