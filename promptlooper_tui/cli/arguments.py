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
