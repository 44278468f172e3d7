"""Placeholder registered by the CLI; its commands are being written (issue 17)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register this module's subcommands (none yet)."""
