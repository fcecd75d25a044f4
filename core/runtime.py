"""Giving the worker's other requests a turn, under gunicorn's gevent workers.

A gevent worker (the default with MongoDB) runs each request in a greenlet until it waits on I/O. Two
kinds of request never wait for long enough:

- one that needs no I/O at all (/health/live, the API home): its greenlet finds the client's next
  request already read and serves it too, so a few keep-alive connections were served again and again
  while the others waited (p99 of 1.4 s for /health/live at 16 connections on one worker);
- a long loop (validating and stamping a bulk insert of 10,000): about 250 ms in which every other
  connection of the worker waited.

``give_way`` after each request (estimator_project/gunicorn.conf.py) and every ``EVERY`` items of a long
loop (``in_turns``) lets every greenlet with work ready run first. All of them give way the same way,
``gevent.idle()``, so none can starve another. Under threads it does nothing: the interpreter already
switches threads every few milliseconds.

Django-free: gunicorn's config imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

EVERY = 500  # about 10 ms of validation or stamping


def cooperative() -> bool:
    """Whether this process serves requests from gevent's greenlets (its worker monkey-patched it)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def give_way() -> None:
    if cooperative():
        import gevent

        gevent.idle()


def in_turns(items: Iterable[T], every: int = EVERY) -> Iterator[T]:
    """``items``, giving way after every ``every`` of them."""
    for index, item in enumerate(items, 1):
        yield item
        if index % every == 0:
            give_way()
