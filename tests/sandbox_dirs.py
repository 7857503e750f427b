"""Temporary directories for the embedded server's state in tests (any test folder imports it)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def traversable_temp_dir(prefix: str) -> Iterator[Path]:
    """A directory the unprivileged sandbox uid can traverse: the embedded server keeps state there
    (pytest's own tmp dirs are private to root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
