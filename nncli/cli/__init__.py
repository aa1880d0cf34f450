"""The command line: a thin skin over the library. Each module registers one group of commands on `app`."""

from importlib import import_module

from nncli.cli.app import app

# Registered in this order, which is the order `nncli --help` lists them: the three-command job first.
COMMAND_GROUPS = ("train", "evaluate", "export", "gradcheck", "graph", "sweep", "tools", "runs")
for _group in COMMAND_GROUPS:
    import_module(f"nncli.cli.{_group}")


def main():
    app()
