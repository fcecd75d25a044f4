"""core/runtime/__init__.py: long loops give the worker's other requests a turn."""

from __future__ import annotations

import json

import pytest

from core import runtime


@pytest.fixture
def yields(monkeypatch) -> list[str]:
    """The turns given."""
    calls: list[str] = []
    monkeypatch.setattr(runtime, "give_way", lambda: calls.append("turn"))
    return calls


def test_every_item_comes_through_in_order_with_a_turn_given_after_each_block(yields):
    seen = []
    for item in runtime.in_turns(range(10), every=4):
        seen.append((item, len(yields)))

    # The turn comes after the 4th and the 8th item, before the next one is handed out
    assert seen == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 1), (7, 1), (8, 2), (9, 2)]
    assert len(yields) == 2


def test_a_short_loop_gives_no_turn(yields):
    assert list(runtime.in_turns(["a", "b"], every=4)) == ["a", "b"]
    assert yields == []


JSON_ITEMS = json.dumps([{"bestseller_rank": rank, "category": "books"} for rank in range(1, 1201)])
CSV_ROWS = "bestseller_rank,category\n" + "".join(f"{rank},books\n" for rank in range(1, 1201))


@pytest.mark.parametrize(
    ("body", "content_type", "loops"),
    [
        # validation, stamping, then the answer's items
        (JSON_ITEMS, "application/json", 3),
        # the CSV's rows, stamping, then the answer's items
        (CSV_ROWS, "text/csv", 3),
    ],
)
def test_a_bulk_insert_gives_turns_while_it_validates_and_stamps(api, yields, body, content_type, loops):
    response = api.post("/estimations", data=body, content_type=content_type)

    assert response.status_code == 201, response.content
    assert len(yields) == loops * (1200 // runtime.EVERY)


def test_no_turn_is_given_outside_gevent(monkeypatch):
    # This test process is not monkey-patched: giving way must not start gevent's loop here
    gevent = pytest.importorskip("gevent")
    monkeypatch.setattr(gevent, "idle", lambda: pytest.fail("gevent.idle() called outside gevent"))

    assert runtime.cooperative() is False
    runtime.give_way()


def test_a_switch_turned_off_for_the_benchmark_is_off_and_the_others_stay_on(monkeypatch):
    monkeypatch.setenv("SPEED_SWITCHES_OFF", " turns ,")

    assert runtime._switched_off() == {"turns"}
    monkeypatch.setattr(runtime, "OFF", runtime._switched_off())
    assert runtime.on("turns") is False
    assert runtime.on("group_insert") is True


def test_turns_off_gives_no_turn_even_under_gevent(monkeypatch):
    gevent = pytest.importorskip("gevent")
    monkeypatch.setattr(runtime, "cooperative", lambda: True)
    idled: list[str] = []
    monkeypatch.setattr(gevent, "idle", lambda: idled.append("idle"))

    runtime.give_way()
    monkeypatch.setattr(runtime, "OFF", frozenset({"turns"}))
    runtime.give_way()

    assert idled == ["idle"]  # the first, with turns on


def test_an_unknown_switch_name_is_refused_with_the_names_there_are(monkeypatch):
    monkeypatch.setenv("SPEED_SWITCHES_OFF", "turns,gc_freeze")

    with pytest.raises(ValueError, match=r"SPEED_SWITCHES_OFF names gc_freeze: the switches are group_insert, turns"):
        runtime._switched_off()
    with pytest.raises(KeyError, match="not a switch"):
        runtime.on("negotiation_cache")
