"""The external merge sort: event-time order and one copy per event, whatever spills to disk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ssm_detect.replay.ordering import EventSorter, HeldEvent


def held(time: int, event_id: str, body: str = "{}") -> HeldEvent:
    return HeldEvent(time, event_id, f"file:{event_id}", body)


def drain(sorter: EventSorter) -> list[HeldEvent]:
    return list(sorter.unique_in_order())


def test_sorter_orders_by_time_then_event_id_in_memory() -> None:
    sorter = EventSorter()
    for event in (held(3, "a"), held(1, "b"), held(1, "a"), held(2, "z")):
        sorter.add(event)
    assert [(e.time, e.event_id) for e in drain(sorter)] == [(1, "a"), (1, "b"), (2, "z"), (3, "a")]
    assert sorter.runs_written == 0


def test_sorter_spills_runs_and_merges_them_in_order() -> None:
    sorter = EventSorter(max_held_bytes=1000)
    times = [(n * 7919) % 1000 for n in range(1000)]  # every time once, scrambled
    for time in times:
        sorter.add(held(time, f"id-{time}", body="x" * 100))
    out = drain(sorter)
    assert [e.time for e in out] == sorted(times)
    assert sorter.runs_written > 100
    assert out[0] == held(0, "id-0", body="x" * 100)  # origin and body survive the disk


def test_sorter_drops_copies_across_runs_and_keeps_the_first_read() -> None:
    sorter = EventSorter(max_held_bytes=1)  # every event is its own run
    sorter.add(held(5, "dup", body='{"copy": 1}'))
    sorter.add(held(4, "other"))
    sorter.add(held(5, "dup", body='{"copy": 2}'))
    sorter.add(held(5, "dup", body='{"copy": 3}'))
    assert [e.body for e in drain(sorter)] == ["{}", '{"copy": 1}']
    assert sorter.duplicates == 2
    assert sorter.runs_written == 4


def test_sorter_keeps_one_event_id_at_two_times() -> None:
    """Duplicates are recognised by (time, eventID): CloudTrail never reuses an id at another
    time, and remembering every id would make memory grow with the input (docs/backtest.md)."""
    sorter = EventSorter()
    sorter.add(held(1, "same"))
    sorter.add(held(2, "same"))
    assert len(drain(sorter)) == 2


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(st.tuples(st.integers(0, 20), st.sampled_from("abcde")), max_size=60),
    budget=st.sampled_from([1, 300, 2000, 10**9]),
)
def test_sorter_output_is_sorted_unique_input_for_any_budget(
    events: list[tuple[int, str]], budget: int
) -> None:
    sorter = EventSorter(max_held_bytes=budget)
    for position, (time, event_id) in enumerate(events):
        sorter.add(held(time, event_id, body=str(position)))
    out = drain(sorter)
    first_read = {}
    for position, key in enumerate(events):
        first_read.setdefault(key, str(position))
    assert [(e.time, e.event_id, e.body) for e in out] == [
        (*key, first_read[key]) for key in sorted(first_read)
    ]
    assert sorter.duplicates == len(events) - len(first_read)


def test_sorter_spill_keeps_origins_with_any_character() -> None:
    """File names are the user's: a tab or newline in one must not split a spilled line."""
    sorter = EventSorter(max_held_bytes=1)
    odd = HeldEvent(1, "id\t1", "dir\twith\ntabs/file.json:Records[0]", '{"eventID":"id\\t1"}')
    sorter.add(odd)
    assert drain(sorter) == [odd]


def test_sorter_keeps_the_first_read_copy_in_memory_too() -> None:
    sorter = EventSorter()  # nothing spilled
    for copy in (1, 2, 3):
        sorter.add(held(5, "dup", body=f'{{"copy": {copy}}}'))
    sorter.add(held(4, "other"))
    assert [e.body for e in drain(sorter)] == ["{}", '{"copy": 1}']
    assert sorter.duplicates == 2


def test_sorter_lets_go_of_each_held_event_as_it_is_handed_on() -> None:
    """While the detections run, the events already processed must not stay held: their
    memory is what the detection state and the ledger grow into (the 10M-record replay)."""
    sorter = EventSorter()
    for n in range(100):
        sorter.add(held(n, f"id-{n}", body="x" * 1000))
    events = sorter.unique_in_order()
    for _ in range(60):
        next(events)
    assert len(sorter._held) == 40  # what the sorter still holds
    assert [e.time for e in events] == list(range(60, 100))
