"""Stopping a run cleanly: SIGINT (Ctrl-C) or SIGTERM asks the loop to stop after the current step.

The loop then writes checkpoint.npz and ends as "interrupted", and the process exits with the shell's code for
that signal (EXIT_CODES). A second Ctrl-C does not wait: it raises KeyboardInterrupt at once.
"""

import signal
from contextlib import contextmanager

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """A stop was requested; raised by the loop at the end of the current step, `step` steps into the epoch with
    `partial` = the running sums of their metrics (Tally.state())."""

    def __init__(self, step, partial):
        super().__init__(step)
        self.step, self.partial = step, partial


@contextmanager
def stop_requests(request_stop):
    """Inside the block, the first SIGINT or SIGTERM calls `request_stop(signum)` instead of ending the process and
    a later SIGINT raises KeyboardInterrupt; the earlier handlers come back on leaving. Signals reach only the
    main thread: elsewhere nothing is installed."""

    def handle(signum, frame):
        request_stop(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        handlers = {signum: signal.signal(signum, handle) for signum in EXIT_CODES}
    except ValueError:  # not the main thread
        handlers = {}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def stopped_by(signum):
    """The summary's account of a stop: the signal's name and the exit code the command ends with."""
    return {"signal": signal.Signals(signum).name, "exit_code": EXIT_CODES[signum]}
