"""The committed frontend build (ui/static/) matches its sources (ui/web/) and stays small.

Rebuild with ``python -m daytonaflow.ui._build`` after editing anything under ui/web/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from daytonaflow.ui._build import bundle_sizes, source_digest

UI = Path(__file__).resolve().parents[2] / "ui"
WEB = UI / "web"
STATIC = UI / "static"
GZIP_BUDGET = 600 * 1024


def _build_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads((STATIC / "build.json").read_text(encoding="utf-8"))
    return info


def test_committed_build_is_built_from_the_current_sources() -> None:
    assert source_digest(WEB) == _build_info()["sources"], (
        "ui/static is stale: run `python -m daytonaflow.ui._build` and commit ui/static/"
    )


def test_bundle_stays_within_600_kib_gzipped() -> None:
    assert _build_info()["gzipBytes"] <= GZIP_BUDGET


def test_build_info_records_the_committed_bundle_sizes() -> None:
    info = _build_info()
    assert bundle_sizes(STATIC) == (info["bytes"], info["gzipBytes"])


def test_index_html_loads_the_bundle_from_assets() -> None:
    index = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<script[^>]+src="assets/app\.js"', index)
    assert re.search(r'<link[^>]+href="assets/app\.css"', index)
    assert (STATIC / "app.js").stat().st_size > 0
    assert (STATIC / "app.css").stat().st_size > 0


def test_source_digest_ignores_node_modules_and_sees_every_other_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.tsx").write_text("a", encoding="utf-8")
    before = source_digest(tmp_path)
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text("ignored", encoding="utf-8")
    assert source_digest(tmp_path) == before
    (tmp_path / "src" / "main.tsx").write_text("b", encoding="utf-8")
    assert source_digest(tmp_path) != before
