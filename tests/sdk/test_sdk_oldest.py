"""The whole SDK suite again with the oldest `daytona` release the server claims (docs/local-server.md).

Two releases cannot share one environment, so the oldest lives in a `pip install --target`
directory (`.ci/run` makes it: ``DAYTONAFLOW_OLDEST_SDK``) that shadows the installed one on
``PYTHONPATH`` in a child pytest. Without that directory the test skips, unless
``DAYTONAFLOW_REQUIRE_OLDEST_SDK=1`` (CI sets it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
_CHILD = "DAYTONAFLOW_SDK_CHILD_RUN"


@pytest.mark.timeout(1500)
@pytest.mark.skipif(os.environ.get(_CHILD) == "1", reason="already the run with the oldest SDK")
def test_the_sdk_suite_passes_with_the_oldest_supported_release() -> None:
    target = os.environ.get("DAYTONAFLOW_OLDEST_SDK", "")
    if not target or not (Path(target) / "daytona").is_dir():
        if os.environ.get("DAYTONAFLOW_REQUIRE_OLDEST_SDK") == "1":
            pytest.fail(f"DAYTONAFLOW_OLDEST_SDK={target!r} holds no `daytona` package", pytrace=False)
        pytest.skip("set DAYTONAFLOW_OLDEST_SDK to a `pip install --target DIR daytona==0.129.0` directory")
    env = {**os.environ, _CHILD: "1", "PYTHONPATH": target}
    version = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('daytona'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(HERE),
            # Not the TypeScript SDK's run, nor the table of the pinned release's methods.
            "--ignore",
            str(HERE / "test_sdk_typescript.py"),
            "--ignore",
            str(HERE / "test_sdk_compatibility_table.py"),
        ],
        env=env,
        cwd=HERE.parent.parent,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert child.returncode == 0, f"the SDK suite with daytona {version} failed:\n{child.stdout[-6000:]}"
