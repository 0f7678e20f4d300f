"""Atomic text files: a crash at any moment leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path` (unique per process), fsync it, rename it over
    `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    # a failed write (disk full, Ctrl-C) leaves no temp file behind; re-raised
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
