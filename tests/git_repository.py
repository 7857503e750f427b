"""A small local git repository for canvases that check one out (``file://`` needs no network)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_repository(root: Path, *, passing: bool) -> str:
    """A small git repository with one unittest test, passing or not; returns its file:// URL."""
    repository = root / ("passing" if passing else "failing")
    repository.mkdir()
    (repository / "test_sum.py").write_text(
        "import unittest\n\n\nclass SumTest(unittest.TestCase):\n"
        f"    def test_sum(self):\n        self.assertEqual(1 + 1, {2 if passing else 3})\n"
    )
    git = ["git", "-c", "user.name=daytonaflow", "-c", "user.email=tests@daytonaflow.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repository)], check=True)
    subprocess.run([*git, "-C", str(repository), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repository), "commit", "-qm", "tests"], check=True)
    return f"file://{repository}"
