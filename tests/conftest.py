"""Suite-wide policy for tests marked ``sandbox`` (real bubblewrap sandboxes).

Where the host cannot create sandboxes (no unprivileged user namespaces), those tests skip with
bubblewrap's own reason; with ``DAYTONAFLOW_REQUIRE_SANDBOXES=1`` (CI sets it) they fail instead,
so a broken host can never turn the end-to-end suite into a silent pass.
"""

from __future__ import annotations

import functools
import os

import pytest

from daytonaflow.localserver.errors import IsolationUnavailableError
from daytonaflow.localserver.isolation import find_bwrap, host_uid_for_sandboxes, probe_bwrap


@functools.cache
def _sandboxes_unavailable_reason() -> str | None:
    try:
        probe_bwrap(find_bwrap(), host_uid_for_sandboxes())
    except IsolationUnavailableError as error:
        return str(error)
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("sandbox") is None:
        return
    reason = _sandboxes_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("DAYTONAFLOW_REQUIRE_SANDBOXES") == "1":
        pytest.fail(f"sandboxes are required here but unavailable: {reason}", pytrace=False)
    pytest.skip(f"bubblewrap sandboxes unavailable here: {reason}")
