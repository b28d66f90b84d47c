"""`python -m certbound` is the `certbound` command."""

from certbound.cli import main

main()
