"""The runtime's speed switches, in one place: each optimisation kept, named in SWITCHES with what it buys.

Here: turns (under gevent, the worker's other requests first); the group insert (estimations/) reads its.
Django-free: gunicorn's config imports it. Why and how much each buys: docs/performance.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Each optimisation kept, with what it buys (figures: docs/performance.md). Any other is plain code.
SWITCHES = {
    "group_insert": "concurrent single POSTs of a worker share one insert_many: fewer database commands per POST",
    "turns": "under gevent, requests give way when they end and in long loops: fair turns, fuller write batches",
}


def _switched_off() -> frozenset[str]:
    """SPEED_SWITCHES_OFF=name,name (a benchmark-only knob, `make bench-switches`): switches turned off."""
    names = frozenset(name.strip() for name in os.environ.get("SPEED_SWITCHES_OFF", "").split(",") if name.strip())
    unknown = sorted(names - SWITCHES.keys())
    if unknown:
        raise ValueError(f"SPEED_SWITCHES_OFF names {', '.join(unknown)}: the switches are {', '.join(SWITCHES)}.")
    return names


OFF = _switched_off()


def on(name: str) -> bool:
    """Whether switch ``name`` is on: always, unless the benchmark turned it off."""
    if name not in SWITCHES:
        raise KeyError(f"{name!r} is not a switch of core/runtime/__init__.py: {', '.join(SWITCHES)}")
    return name not in OFF


EVERY = 500  # items of a long loop between turns: about 10 ms of validation or stamping


def cooperative() -> bool:
    """Whether this process serves requests from gevent's greenlets (its worker monkey-patched it)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def give_way() -> None:
    """Under gevent, every other greenlet with work ready runs first (the turns switch); else nothing."""
    if on("turns") and cooperative():
        import gevent

        gevent.idle()


def in_turns(items: Iterable[T], every: int = EVERY) -> Iterator[T]:
    """``items``, giving way after every ``every`` of them."""
    for index, item in enumerate(items, 1):
        yield item
        if index % every == 0:
            give_way()
