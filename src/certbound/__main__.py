"""`python -m certbound` is the `certbound` command."""

from certbound.cli.main import main

main()
