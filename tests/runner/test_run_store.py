"""The run database: a corrupt or foreign file is a clear error, never silent loss."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daytonaflow.runner import RunNotFoundError, RunStore, RunStoreError, default_db_path


def test_a_new_database_is_created_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "runs.db"
    with RunStore(path) as store:
        store.insert_run("r1", {"metadata": {"name": "c"}}, {}, keep_resources=False, owner="me")
    with RunStore(path) as store:
        assert store.get_run("r1").canvas_name == "c"


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(RunStoreError, match="not a usable daytonaflow run database"):
        RunStore(path)


def test_a_sqlite_file_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(RunStoreError, match="not a daytonaflow run database"):
        RunStore(path)


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(RunStoreError, match="newer daytonaflow"):
        RunStore(path)


def test_a_damaged_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        for n in range(200):
            store.insert_run(f"r{n}", {"metadata": {"name": "c" * 500}}, {}, keep_resources=False, owner="me")
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 4] = b"\xff" * 8192
    path.write_bytes(bytes(data))
    with pytest.raises(RunStoreError, match=r"damaged|not a usable"):
        RunStore(path)


def test_runs_are_found_by_an_unambiguous_prefix(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as store:
        store.insert_run("abc123", {"metadata": {"name": "c"}}, {}, keep_resources=False, owner="me")
        store.insert_run("abd456", {"metadata": {"name": "c"}}, {}, keep_resources=False, owner="me")
        assert store.find_run("abc").id == "abc123"
        with pytest.raises(RunNotFoundError, match="several"):
            store.find_run("ab")
        with pytest.raises(RunNotFoundError):
            store.find_run("zz")


def test_the_default_path_honours_the_environment(tmp_path: Path) -> None:
    assert default_db_path({"DAYTONAFLOW_DB": str(tmp_path / "x.db")}) == tmp_path / "x.db"
    assert default_db_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "daytonaflow" / "runs.db"


def test_a_database_from_before_resume_attempts_gains_the_column_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with RunStore(path) as store:
        store.insert_run("r1", {"metadata": {"name": "old"}}, {}, keep_resources=False, owner="o")
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE runs DROP COLUMN resume_attempts")
    with RunStore(path) as store:
        assert store.get_run("r1").resume_attempts == 0
        store.count_resume_attempt("r1")
        assert store.get_run("r1").resume_attempts == 1
