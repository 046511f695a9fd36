"""`python -m lbi` runs the command line."""

from lbi.cli import main

main()
