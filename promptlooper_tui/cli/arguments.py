"""What the command line takes: the flag sets every command shares, the value types of its
flags, and secrets read from standard input rather than from a flag."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from ..domain.errors import BadInput


@dataclass(frozen=True)
class Parsers:
    """Where a command module adds its commands, and the flag sets they take as parents."""

    commands: argparse._SubParsersAction[argparse.ArgumentParser]
    #: `--home DIR` and `--db URL`: every command takes them, before or after its name.
    home: argparse.ArgumentParser
    #: `--json`: print one JSON document instead of text.
    json: argparse.ArgumentParser

    def add_group(
        self, name: str, help: str
    ) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        """A command with actions (`NAME ACTION ...`): where its actions are added."""
        group = self.commands.add_parser(name, help=help)
        return group.add_subparsers(dest="action", metavar="ACTION", required=True)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    return value


def score_difference(text: str) -> float:
    """A difference of scores that may matter: at least 0, below 1."""
    value = fraction(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 up to 1 (not 1), got {text}")
    return value


def holdout_share(text: str) -> float:
    """evolve's held-out share of the items: 0 (none) up to 0.8."""
    value = fraction(text)
    if not 0 <= value <= 0.8:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 0.8, got {text}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def secret_from_stdin(flag: str) -> str:
    """The first line of stdin, stripped; BadInput naming `flag` when there is none."""
    secret = sys.stdin.readline().strip()
    if not secret:
        raise BadInput(f"{flag}: nothing on standard input")
    return secret
