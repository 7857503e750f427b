"""`daytonaflow run` on the embedded backend SIGKILLed at random points, then `daytonaflow runs resume`:
every run completes or ends with the clear interruption failure; no duplicate, no leaked sandbox.

The loop is bench/crash_resume.py's (which runs 20 kills); here a few.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sandbox_dirs import traversable_temp_dir

pytestmark = pytest.mark.sandbox
BENCH = Path(__file__).resolve().parents[2] / "bench" / "crash_resume.py"
KILLS = 4


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_resume_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_runs_killed_at_random_points_and_resumed_end_clearly_without_duplicate_or_leaked_sandboxes() -> None:
    bench = _bench()
    with traversable_temp_dir("daytonaflow-crash-test-") as root:
        figures = bench.crash_resume(KILLS, seed=11, root=root)
    assert figures.kills == KILLS
    assert figures.completed + figures.clear_failures == KILLS, figures.problems
    assert (figures.other_failures, figures.duplicates, figures.leaks) == (0, 0, 0), figures.problems
