"""EventChain: a run's chains share their links, and every lookup sees exactly its own chain."""

from __future__ import annotations

import random

import pytest

from daytonaflow.expressions import (
    AmbiguousReferenceError,
    ChainEntry,
    EventChain,
    ExpressionContext,
    ReferenceNotFoundError,
    resolve,
)


def entry(index: int, name: str | None = None, component: str = "test.echo") -> ChainEntry:
    return ChainEntry(f"n{index}", name or f"Step {index}", component, {"type": "t", "data": {"i": index}})


def linked(entries: list[ChainEntry]) -> EventChain:
    chain = EventChain.of(entries)
    assert chain is not None
    return chain


def naive_lookup(entries: list[ChainEntry], key: str) -> ChainEntry | type[Exception]:
    """The lookup rule spelled out over a list: latest by name, else by id, else one component."""
    for field in ("node_name", "node_id"):
        matches = [e for e in entries if getattr(e, field) == key]
        if matches:
            return matches[-1]
    matches = [e for e in entries if e.component == key]
    if not matches:
        return ReferenceNotFoundError
    if len({e.node_name for e in matches}) > 1:
        return AmbiguousReferenceError
    return matches[-1]


def test_a_chain_reads_like_the_list_of_its_entries() -> None:
    entries = [entry(index) for index in range(1000)]
    chain = linked(entries)
    assert len(chain) == 1000
    assert list(chain) == entries
    assert list(reversed(chain)) == entries[::-1]
    assert [chain[index] for index in (0, 1, 499, 998, 999, -1, -2, -1000)] == [
        entries[index] for index in (0, 1, 499, 998, 999, -1, -2, -1000)
    ]
    assert chain[10:13] == tuple(entries[10:13])
    with pytest.raises(IndexError):
        chain[1000]
    with pytest.raises(IndexError):
        chain[-1001]


def test_previous_in_a_deep_chain_returns_the_event_that_many_steps_back() -> None:
    entries = [entry(index) for index in range(5000)]
    ctx = ExpressionContext(linked(entries), entries[0].event)
    for steps in (1, 2, 3, 7, 64, 1000, 4097, 4999, 5000):
        assert ctx.previous(steps) is entries[-steps].event
    with pytest.raises(ReferenceNotFoundError, match=r"previous\(5001\): only 5000 nodes ran before"):
        ctx.previous(5001)


def test_a_deep_chain_resolves_names_ids_and_root_to_their_own_events() -> None:
    entries = [entry(index) for index in range(3000)]
    chain = linked(entries)
    ctx = ExpressionContext(chain, chain.root.entry.event)
    config = {
        "first": '{{ $["Step 0"].data.i }}',
        "middle": '{{ $["Step 1500"].data.i }}',
        "by_id": '{{ $["n2998"].data.i }}',
        "last": "{{ previous().data.i }}",
        "root": "{{ root().data.i }}",
    }
    assert resolve(config, ctx) == {"first": 0, "middle": 1500, "by_id": 2998, "last": 2999, "root": 0}


def test_a_node_that_ran_again_is_seen_with_its_latest_event() -> None:
    entries = [entry(0, "Loop"), entry(1), entry(2, "Loop"), entry(3)]
    chain = linked(entries)
    assert ExpressionContext(chain.parent).lookup("Loop") is entries[2].event  # type: ignore[arg-type]
    assert ExpressionContext(chain).lookup("Loop") is entries[2].event
    # Asked first at the prefix, which remembers its answer: the longer chain must not reuse it.
    prefix = linked(entries[:2])
    assert ExpressionContext(prefix).lookup("Loop") is entries[0].event
    longer = EventChain(entries[2], prefix)
    assert ExpressionContext(longer).lookup("Loop") is entries[2].event


def test_an_answer_remembered_on_one_branch_does_not_leak_into_its_sibling() -> None:
    trunk = linked([entry(index) for index in range(50)])
    left = EventChain(entry(50, "Only left"), trunk)
    right = EventChain(entry(51, "Only right"), trunk)
    assert ExpressionContext(left).lookup("Only left") is left.entry.event
    assert ExpressionContext(left).has("Only left")
    assert not ExpressionContext(right).has("Only left")
    with pytest.raises(ReferenceNotFoundError, match='no earlier node in this run is named "Only left"'):
        ExpressionContext(right).lookup("Only left")
    assert ExpressionContext(left).lookup("Step 3") is ExpressionContext(right).lookup("Step 3")


def test_a_component_becomes_ambiguous_below_a_link_that_found_it_unique() -> None:
    trunk = linked([entry(0, "Start", "start"), entry(1, "Build", "daytona.executeCommand")])
    assert ExpressionContext(trunk).lookup("daytona.executeCommand") is trunk.entry.event
    below = EventChain(entry(2, "Test", "daytona.executeCommand"), trunk)
    with pytest.raises(AmbiguousReferenceError) as caught:
        ExpressionContext(below).lookup("daytona.executeCommand")
    assert str(caught.value) == (
        '$["daytona.executeCommand"] is ambiguous: 2 earlier nodes are daytona.executeCommand'
        ' components; name the one you mean: $["Build"], $["Test"]'
    )
    # The same node running again keeps one name: still unambiguous, and its latest event.
    again = EventChain(entry(3, "Build", "daytona.executeCommand"), trunk)
    assert ExpressionContext(again).lookup("daytona.executeCommand") is again.entry.event


def test_lookups_on_a_random_tree_of_shared_chains_match_a_plain_scan() -> None:
    rng = random.Random(20261201)
    names = ["A", "B", "C", "n3", "n7"]  # some names are also other nodes' ids
    components = ["x", "y", "A"]
    links: list[EventChain] = []
    entries_of: dict[int, list[ChainEntry]] = {}
    for index in range(600):
        new = ChainEntry(f"n{index % 40}", rng.choice(names), rng.choice(components), {"data": {"i": index}})
        parent = rng.choice(links) if links and rng.random() < 0.9 else None
        link = EventChain(new, parent)
        entries_of[id(link)] = [*(entries_of[id(parent)] if parent is not None else []), new]
        links.append(link)
    keys = [*names, *components, "n0", "n12", "n39", "missing"]
    # Ask in a random order, so answers remembered by some links are met by later lookups below them.
    for _ in range(4000):
        link = rng.choice(links)
        key = rng.choice(keys)
        expected = naive_lookup(entries_of[id(link)], key)
        ctx = ExpressionContext(link)
        if isinstance(expected, ChainEntry):
            assert ctx.lookup(key) is expected.event
            assert ctx.has(key)
        else:
            with pytest.raises(expected):
                ctx.lookup(key)
            assert ctx.has(key) is (expected is AmbiguousReferenceError)
