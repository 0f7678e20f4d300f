"""What every command shares: its exit statuses and an argument parser whose errors are one line.

Exit status: 0 success, 1 the check failed (overfit target missed, run failed), 2 bad input or
config, 130 interrupted (a checkpoint and summary were written; resume with --resume).
"""
from __future__ import annotations

import argparse

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors exit 2 too, but with usage noise
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")
