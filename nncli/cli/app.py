"""The Typer app, its two consoles and the edge where library errors become messages and exit codes.

Exit codes: 0 success; 1 the job ran and failed (a gradient check failed, training diverged);
2 bad input (usage, config, data, checkpoint), reported without a traceback unless --debug;
141 the reader of stdout went away (`| head`): output ends quietly, with the status of a tool killed by SIGPIPE.
Every command module imports `app` from here and registers on it; nothing here imports a command.
"""

import functools
import json
import os
import signal
import sys
import traceback

import typer
import typer.rich_utils
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from nncli import __version__
from nncli.errors import Hint, NncliError, UsageError


def _plain_flags(params):
    """Flags show no value type, since they take none (`--force`, not `--force <bool>`); arguments show in
    capitals, as in a manual's synopsis (CHECKPOINT, not checkpoint)."""
    for param in params:
        if param.param_type_name == "argument" and param.metavar is None:
            param.metavar = param.name.upper()
        elif getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # what typer shows in the type column instead of <bool>
    return params


class _Group(TyperGroup):
    """The app: its own flags (--version, --debug, completion) without <bool>."""

    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))


class _Command(TyperCommand):
    """A command whose help reads as a manual's: CHECKPOINT, [CONFIG], [OVERRIDES]..., flags without <bool>."""

    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx):
        pieces = [self.options_metavar]
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar if param.required else f"[{param.metavar}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


class _Typer(typer.Typer):
    """typer.Typer whose commands are `_Command`s."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Train small fully connected neural networks in plain NumPy, driven by YAML configs.",
)


def _color_settings(environ=os.environ):
    """Console settings from the environment's conventions: NO_COLOR (any value but empty) drops every escape code,
    bold, italic and dim included, not only colors (https://no-color.org); FORCE_COLOR styles output that is not a
    terminal (a pipe, a CI log); neither: styled on a terminal only, as rich decides."""
    if environ.get("NO_COLOR", ""):
        return {"color_system": None, "no_color": True}
    if environ.get("FORCE_COLOR", ""):
        return {"force_terminal": True}
    return {}


if _color_settings().get("no_color"):  # --help is printed by typer's own console
    typer.rich_utils.COLOR_SYSTEM = None


class _Console(Console):
    """A rich Console whose closed output is a BrokenPipeError, as for print, rather than rich's own SystemExit(1)
    (1 means a failed check here): `user_errors` ends the command quietly, a caller may catch it to carry on."""

    @property
    def size(self):
        """A terminal's size; elsewhere (a pipe, a file) as wide as the content needs, whatever COLUMNS says."""
        size = Console.size.fget(self)
        return size if self.is_terminal else ConsoleDimensions(1_000_000, size.height)

    @size.setter
    def size(self, new_size):
        Console.size.fset(self, new_size)

    def on_broken_pipe(self):
        self.quiet = True  # anything printed after this is dropped
        raise BrokenPipeError(32, "the reader of this output went away")


out = _Console(highlight=False, **_color_settings())
err = _Console(stderr=True, highlight=False, **_color_settings())
_debug = {"on": False}
EXIT_BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)  # 141: what a shell reports for a tool killed by SIGPIPE

HINTS = {  # what a user can do about an error (errors.Hint), in this command line's own flags
    Hint.REPLACE: "pass --force to replace it",
    Hint.ACCEPT_CHANGES: "pass --force to accept the changed keys",
    Hint.ELSEWHERE: "choose another --out",
    Hint.ANOTHER_PATH: "choose another path",
    Hint.RESUME: "pass --resume to continue it",
    Hint.START_FRESH: "start it with nncli train CONFIG",
    Hint.TRAIN_OR_RESUME: "nncli train CONFIG [KEY=VALUE ...], or nncli train --resume RUN_DIR",
    Hint.SEEDS: "resume it with --seeds SEEDS",
    Hint.DATA_FILE: "pass --data FILE",
    Hint.LABELS_FILE: "pass --labels FILE",
    Hint.SPLIT: "choose another --split",
    Hint.WHOLE_FILE: "drop --split to evaluate the whole file",
    Hint.OWN_SPLIT: "drop --data to evaluate the checkpoint's own split (from where it was trained)",
    Hint.WHERE_TRAINED: "run from where it was trained",
    Hint.TEXT_SUMMARY: "nncli plot --text shows a summary in the terminal without it",
    Hint.START_SEED_STUDY: "start the study with nncli train CONFIG --seeds ...",
    Hint.RESUME_WITHOUT_SEEDS: "resume that run without --seeds",
}


def _version(value: bool):
    if value:
        print(f"nncli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
):
    _debug["on"] = debug


def print_json(obj):
    """Print `obj` as one line of strict JSON on stdout (NaN and ±inf as null): what every --json prints."""
    from nncli.training.atomic import jsonable

    print(json.dumps(jsonable(obj)))


def check_choice(flag, value, allowed):
    """Refuse an option value that is not among `allowed` (the library's own registry) before calling the library,
    so the message names the flag: "--sort must be one of name, status, …, got 'colour'" (exit 2 via user_errors)."""
    if value is not None and value not in allowed:
        raise UsageError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def user_errors(command):
    """Turn the library's user errors into a message on stderr and exit code 2 (a traceback only with --debug)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            try:
                return command(*args, **kwargs)
            finally:
                if sys.stdout is not None:  # None: started with stdout closed (>&-)
                    sys.stdout.flush()  # here, not at exit: a reader gone before the last buffered bytes is a closed pipe
        except BrokenPipeError:  # the reader of our output went away (| head): stop quietly, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except MemoryError as e:  # anything allocated past what the bounded readers and preflight can foresee
            if _debug["on"]:
                traceback.print_exc()
            err.print(
                f"[bold red]error:[/] out of memory ({escape(str(e)) or 'MemoryError'}); the data, model or batch "
                "is too large for the memory this process may use",
                soft_wrap=True,
            )
            raise typer.Exit(2) from None
        except (NncliError, OSError) as e:
            if isinstance(e, OSError) and e.filename is None:  # not a path the user gave: a real failure
                raise
            if _debug["on"]:
                traceback.print_exc()  # --debug adds the traceback; the exit code stays that of bad input
            message = e.render(HINTS) if isinstance(e, NncliError) else str(e)
            head = f"{e.head}: " if getattr(e, "head", None) else ""
            err.print(f"[bold red]error:[/] {escape(head + message)}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper
