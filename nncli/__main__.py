"""`python -m nncli` runs the command line."""

from .cli import main

main()
