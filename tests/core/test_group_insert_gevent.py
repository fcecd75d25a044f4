"""Group insert under gevent, in a fresh process with the gevent worker's patching: greenlets with a
request in hand share one write, and a request killed while queued leaves the queue."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.helpers import run_python

GREENLETS = """
    class Counting:
        def __init__(self, collection):
            self.collection, self.commands = collection, []

        def insert_one(self, document):
            self.commands.append(1)
            return self.collection.insert_one(document)

        def insert_many(self, documents, ordered=True):
            self.commands.append(len(documents))
            return self.collection.insert_many(documents, ordered=ordered)

    spy = Counting(mongomock.MongoClient().db.c)
    group = GroupInsert(spy)
    gevent.joinall([gevent.spawn(group.insert, {"n": n}) for n in range(8)], raise_error=True)
    print(json.dumps({"commands": spy.commands, "stored": spy.collection.count_documents({})}))
"""


GEVENT_WORKER = """
    from gevent import monkey

    monkey.patch_all()

    import json

    import gevent
    import mongomock

    from core.runtime.group_insert import GroupInsert
"""


def under_gevent(script: str) -> dict:
    """Run ``script`` in a fresh interpreter monkey-patched as a gevent worker is (with gevent, mongomock
    and GroupInsert imported); what it printed, as JSON."""
    pytest.importorskip("gevent")
    done = run_python(textwrap.dedent(GEVENT_WORKER) + textwrap.dedent(script), {})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_under_gevent_greenlets_with_a_request_in_hand_share_one_write():
    # Eight greenlets insert at once on a database that never blocks (no I/O to switch on): without
    # giving way, each would finish its own insert_one before the next even started.
    assert under_gevent(GREENLETS) == {"commands": [8], "stored": 8}


KILLED_WHILE_QUEUED = """
    class Slow:
        def __init__(self, collection):
            self.collection = collection

        def insert_one(self, document):
            gevent.sleep(0.05)  # at the database
            return self.collection.insert_one(document)

        def insert_many(self, documents, ordered=True):
            gevent.sleep(0.05)
            return self.collection.insert_many(documents, ordered=ordered)

    group = GroupInsert(Slow(mongomock.MongoClient().db.c))
    first = gevent.spawn(group.insert, {"n": 1})
    gevent.sleep(0.01)  # its write is at the database
    doomed, behind = gevent.spawn(group.insert, {"n": 2}), gevent.spawn(group.insert, {"n": 3})
    gevent.sleep(0.01)  # both queued behind it
    doomed.kill()  # as gunicorn kills a stopping worker's greenlets
    finished = gevent.joinall([first, behind], timeout=5)
    print(json.dumps({
        "finished": len(finished),
        "stored": sorted(d["n"] for d in group.collection.collection.find()),
        "waiting": len(group._queue),
    }))
"""


def test_under_gevent_a_request_killed_while_queued_leaves_the_queue():
    # Without leaving, it would be handed the lead after the first write and nobody would write again.
    assert under_gevent(KILLED_WHILE_QUEUED) == {"finished": 2, "stored": [1, 3], "waiting": 0}
