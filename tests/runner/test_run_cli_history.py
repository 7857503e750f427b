"""`daytonaflow runs show` of a huge run, page by page or streamed; `runs check`; a damaged database."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from daytonaflow.cli import EXIT_FAILED, EXIT_OK, main
from daytonaflow.runner import RunStore

RUN_ID = "huge-run"


def write_chain_run(db: Path, length: int) -> None:
    """A finished run of ``length`` executions named Step 0..., each with its one event."""
    nodes = [{"id": f"n{i}", "name": f"Step {i}", "component": "c"} for i in range(length)]
    canvas = {"metadata": {"name": "chain"}, "spec": {"nodes": nodes, "edges": []}}
    with RunStore(db) as store, store.transaction():
        store.insert_run(RUN_ID, canvas, {}, keep_resources=False, owner="me")
        for i in range(length):
            store.insert_execution(f"x{i}", RUN_ID, f"n{i}", f"Step {i}", "c", None)
            store.insert_event(f"e{i}", RUN_ID, f"x{i}", f"n{i}", "default", None, {"data": {"step": i}})
            store.finish_execution(f"x{i}", "completed", channel="default", output_event_id=f"e{i}")
        store.set_run_status(RUN_ID, "succeeded")


def shown_steps(out: str) -> set[int]:
    """The steps whose rows were drawn (in the nodes table, the events table or both)."""
    return {int(number) for number in re.findall(r"Step (\d+)", out)}


@pytest.fixture
def huge(tmp_path: Path) -> Path:
    db = tmp_path / "runs.db"
    write_chain_run(db, 50)
    return db


def test_runs_show_draws_the_page_asked_for_and_says_which(
    huge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", RUN_ID, "--db", str(huge), "--limit", "10", "--page", "2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert shown_steps(out) == set(range(10, 20))
    assert "nodes 11-20 of 50" in out and "events 11-20 of 50" in out
    assert "page 2 of 5" in out


def test_runs_show_page_minus_one_draws_the_last_rows(huge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", RUN_ID, "--db", str(huge), "--limit", "20", "--page", "-1"]) == EXIT_OK
    assert shown_steps(capsys.readouterr().out) == set(range(40, 50))


def test_runs_show_of_a_huge_run_counts_what_it_does_not_draw(
    huge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", RUN_ID, "--db", str(huge)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "50 node executions (50 completed) · 50 events" in out
    assert shown_steps(out) == set(range(20))


def test_runs_show_of_a_run_within_one_page_draws_it_whole_without_page_hints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    write_chain_run(db, 3)
    assert main(["runs", "show", RUN_ID, "--db", str(db)]) == EXIT_OK
    out = capsys.readouterr().out
    assert shown_steps(out) == {0, 1, 2}
    assert "page" not in out and " of 3" not in out


def test_runs_show_json_streams_every_execution_and_event_in_order(
    huge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", RUN_ID, "--db", str(huge), "--json", "--limit", "5"]) == EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert [e["nodeName"] for e in document["executions"]] == [f"Step {i}" for i in range(50)]
    assert [e["event"]["data"]["step"] for e in document["events"]] == list(range(50))
    assert (document["run"]["id"], document["resources"]) == (RUN_ID, [])
    assert len(document["canvas"]["spec"]["nodes"]) == 50


def test_runs_list_json_gives_each_runs_own_fields(huge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--db", str(huge), "--json"]) == EXIT_OK
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["id"], run["canvas"], run["status"]) == (RUN_ID, "chain", "succeeded")


def test_runs_check_says_ok_for_a_sound_database(huge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "check", "--db", str(huge)]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"ok: {huge}"


def damage_runs_table(db: Path) -> None:
    with sqlite3.connect(db) as connection:
        (root,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\xff" * page_size
    db.write_bytes(bytes(data))


def test_runs_check_finds_damage_and_exits_1(huge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damage_runs_table(huge)
    assert main(["runs", "check", "--db", str(huge), "--json"]) == EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    assert (report["database"], report["ok"]) == (str(huge), False)
    assert report["problems"]


def test_runs_check_reports_a_file_that_will_not_open_as_its_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"definitely not sqlite" * 100)
    assert main(["runs", "check", "--db", str(foreign)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert out.startswith(f"damaged: {foreign}")
    assert "not a usable daytonaflow run database" in out


def test_runs_check_of_a_missing_database_says_so_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"
    assert main(["runs", "check", "--db", str(missing)]) == EXIT_FAILED
    assert "no run database at" in capsys.readouterr().err
    assert not missing.exists()


def test_a_damaged_database_is_a_clear_error_naming_the_file(
    huge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damage_runs_table(huge)
    assert main(["runs", "--db", str(huge)]) == EXIT_FAILED
    error = " ".join(capsys.readouterr().err.split())
    assert f"error: {huge}: the run database is damaged" in error
    assert "Traceback" not in error
