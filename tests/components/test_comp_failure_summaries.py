"""What a failed executeCommand or executeCode says in a few words (``Payload.failure_summary``):
the exit code and the last output line, or the time limit it reached in the unit it was given in."""

from __future__ import annotations

from comp_support import SANDBOX_ID, FakeContext, drive

from daytonaflow.components import ExecuteCode, ExecuteCommand
from daytonaflow.components._payloads import CodeExecutionPayload, CommandExecutionPayload


def _summary(ctx: FakeContext) -> str | None:
    return ctx.payloads[0].failure_summary()


async def test_a_failed_command_says_its_exit_code_and_last_output_line(daytona, make_ctx, clock):
    daytona.next_exits = [[None, 2]]
    daytona.next_outputs = ["building\nls: cannot access 'nope'\n\n"]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "command": "ls nope"})
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.channel == "failed"
    assert _summary(ctx) == "exit code 2: ls: cannot access 'nope'"


async def test_a_timed_out_command_says_its_limit_in_seconds(daytona, make_ctx, clock):
    daytona.next_exits = [[None] * 30 + [124]]
    daytona.next_outputs = ["Collecting requests\n"]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "command": "pip install requests", "timeout": 3})
    await drive(ExecuteCommand(), ctx, clock)
    assert ctx.data["timeout"] is True
    assert _summary(ctx) == "timed out after 3 s"


async def test_timed_out_code_says_its_limit_in_milliseconds(daytona, make_ctx, clock):
    daytona.next_exits = [[None] * 40 + [124]]
    ctx = make_ctx({"sandbox": SANDBOX_ID, "code": "while True: pass", "timeout": 1500})
    await drive(ExecuteCode(), ctx, clock)
    assert ctx.channel == "failed"
    assert _summary(ctx) == "timed out after 1500 ms"


async def test_a_replayed_timeout_still_says_its_limit(daytona, make_ctx, clock):
    """A crash after the outcome was saved: the replay rebuilds the payload from the record."""
    daytona.next_exits = [[None] * 30 + [124]]
    config = {"sandbox": SANDBOX_ID, "command": "sleep 99", "timeout": 3}
    first = make_ctx(config)
    await drive(ExecuteCommand(), first, clock)
    replayed = make_ctx(config, metadata=first.metadata)
    await drive(ExecuteCommand(), replayed, clock)
    assert replayed.data == first.data
    assert _summary(replayed) == "timed out after 3 s"


def test_a_success_has_nothing_to_summarise() -> None:
    assert CommandExecutionPayload(exit_code=0, result="ok\n", timeout=False).failure_summary() is None
    assert CodeExecutionPayload(exit_code=0, result="ok\n").failure_summary() is None


def test_a_failure_without_output_says_only_its_exit_code() -> None:
    payload = CodeExecutionPayload(exit_code=1, result="  \n")
    assert payload.failure_summary() == "exit code 1"


def test_the_limit_is_not_part_of_the_wire_payload() -> None:
    payload = CommandExecutionPayload(exit_code=124, result="", timeout=True).held_to("30 s")
    assert payload.model_dump(by_alias=True, exclude_none=True) == {
        "exitCode": 124,
        "result": "",
        "timeout": True,
    }
