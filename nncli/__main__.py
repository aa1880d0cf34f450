"""`python -m nncli` runs the command line."""

from nncli.cli import main

main()
