"""The command line: a thin skin over the library. Each module registers one group of commands on `app`."""

from nncli.cli import evaluate, gradcheck, graph, runs, sweep, tools, train  # noqa: F401  (register the commands)
from nncli.cli.app import app


def main():
    app()
