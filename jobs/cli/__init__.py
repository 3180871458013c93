"""The `pul` command line: `app` builds the parser, one module per command group."""

from jobs.cli.app import main

__all__ = ["main"]
