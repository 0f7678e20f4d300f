"""The errors a user can cause (bad data, config or arguments): each is one line on the console and
exit status 2 (commands/parser.py). Every package raises them; this module imports nothing."""

from __future__ import annotations


class ArcVaeError(Exception):
    """Bad input from the user (data, config, arguments): printed as one line, exit status 2."""

    # quoted user text (a key, a value) may hold line breaks: keep one line
    def __str__(self) -> str:
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")


class ConfigError(ArcVaeError):
    """A config key, value or combination that the schema refuses."""


class DataError(ArcVaeError):
    """A grid, file or data option that cannot be used."""
