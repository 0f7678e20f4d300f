"""What every command shares: its exit statuses and an argument parser whose errors are one line.

Exit status: 0 success, 1 the check failed (overfit target missed, run failed), 2 bad input or
config, 130 interrupted (a checkpoint and summary were written; resume with --resume).
"""

from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors exit 2 too, but with usage noise
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def positive(text: str) -> int:
    """An argument type: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)
