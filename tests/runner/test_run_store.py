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


def fill(path: Path, runs: int = 200) -> None:
    """A database of many pages: each run's row holds a 500-character canvas name."""
    with RunStore(path) as store:
        for n in range(runs):
            store.insert_run(f"r{n}", {"metadata": {"name": "c" * 500}}, {}, keep_resources=False, owner="me")


def damage(path: Path, start: int, end: int) -> None:
    data = bytearray(path.read_bytes())
    data[start:end] = b"\xff" * (end - start)
    path.write_bytes(bytes(data))


def damage_runs_table(path: Path) -> None:
    """Overwrite the root page of the runs table: every read of it fails, opening reads none of it."""
    with sqlite3.connect(path) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    damage(path, (root - 1) * page_size, root * page_size)


def test_a_database_damaged_past_its_schema_opens_and_the_read_meeting_the_damage_names_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    fill(path)
    damage_runs_table(path)
    with RunStore(path) as store, pytest.raises(RunStoreError, match="the run database is damaged") as error:
        store.list_runs()
    assert str(path) in str(error.value)


def test_a_database_whose_schema_is_damaged_is_refused_at_open_with_what_the_check_finds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    fill(path)
    damage(path, 100, 4096)  # page 1 past the file header: the schema table opening reads
    with pytest.raises(RunStoreError, match="not a usable daytonaflow run database") as error:
        RunStore(path)
    assert str(path) in str(error.value)
    assert "malformed" in str(error.value)


def test_damage_met_after_the_first_rows_of_a_read_names_the_file_too(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        store.insert_run("r1", {"metadata": {"name": "c"}}, {}, keep_resources=False, owner="me")
        for n in range(200):
            store.insert_execution(f"x{n}", "r1", f"n{n}", f"node {n}", "c", None)
            store.set_metadata(f"x{n}", {"mark": f"<{n}>" + "m" * 500})
    # A leaf in the middle of the executions table: the read has returned rows before it meets it.
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    page = path.read_bytes().index(b"<150>") // page_size
    damage(path, page * page_size, (page + 1) * page_size)
    with RunStore(path) as store, pytest.raises(RunStoreError, match="the run database is damaged") as error:
        store.executions("r1")
    assert str(path) in str(error.value)


def test_the_integrity_check_finds_damage_that_opening_does_not_read(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    fill(path)
    with RunStore(path) as store:
        assert store.check() == []
    damage_runs_table(path)
    with RunStore(path) as store:
        assert store.check() != []


def add_chain_run(store: RunStore, run_id: str, length: int) -> None:
    """A finished run of ``length`` executions, each with its one event, written as the engine does."""
    store.insert_run(run_id, {"metadata": {"name": "chain"}}, {}, keep_resources=False, owner="me")
    for index in range(length):
        store.insert_execution(f"{run_id}-x{index}", run_id, f"n{index}", f"Node {index}", "c", None)
        store.insert_event(
            f"{run_id}-e{index}", run_id, f"{run_id}-x{index}", f"n{index}", "default", None, {}
        )


def test_a_page_of_executions_and_events_is_that_slice_in_creation_order(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as store:
        add_chain_run(store, "other", 5)  # interleaved rows of another run must not leak into the page
        add_chain_run(store, "r1", 30)
        assert [e.node_id for e in store.executions("r1", offset=10, limit=5)] == [
            f"n{i}" for i in range(10, 15)
        ]
        assert [e.node_id for e in store.events("r1", offset=28, limit=5)] == ["n28", "n29"]


def test_reading_a_run_through_in_batches_yields_every_row_once_in_order(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as store:
        add_chain_run(store, "r1", 10)
        add_chain_run(store, "other", 3)
        expected = [f"n{i}" for i in range(10)]
        assert [e.node_id for e in store.iter_executions("r1", batch=3)] == expected
        assert [
            e.node_id for e in store.iter_events("r1", batch=5)
        ] == expected  # a batch boundary at the end


def test_counts_of_a_run_come_without_reading_its_rows(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as store:
        add_chain_run(store, "r1", 4)
        store.finish_execution("r1-x0", "completed")
        assert store.execution_counts("r1") == {"completed": 1, "pending": 3}
        assert store.count_events("r1") == 4


def test_a_database_from_before_the_paging_index_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX executions_by_run_seq")
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "executions_by_run_seq" in names


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
