"""Argument helpers shared by the subcommands: config files and `key=value` overrides."""

from __future__ import annotations

import argparse
import re

OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")

OVERRIDES_HELP = "config overrides as key.sub=value (see `pul config show`)"


def split_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """Separate `key=value` overrides from plain positional arguments (paths)."""
    overrides = [item for item in items if OVERRIDE.match(item)]
    plain = [item for item in items if not OVERRIDE.match(item)]
    return plain, overrides


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps hand-written line breaks and shows defaults."""
