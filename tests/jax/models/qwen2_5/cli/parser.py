"""What every command-line entry point shares: one-line usage errors with exit status 2, and
argument types that reject bad values before anything heavy is loaded."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def fail(self, message: str) -> NoReturn:
        """A usage error found after parsing (a path, a mesh, a limit)."""
        self.error(message)


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer")
non_negative_int = _int_at_least(0, "an integer >= 0")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def mesh_shape(text: str) -> tuple:
    from .devices import parse_mesh

    try:
        return parse_mesh(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def die(prog: str, message: str) -> NoReturn:
    """A one-line error for a failure that is not a usage error (exit status 1)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(1)
