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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
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
