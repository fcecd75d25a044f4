"""The benchmark harness's own arithmetic (the runs themselves are `make bench`, not tests)."""

from __future__ import annotations

import time

import pytest

from bench.measure import page_one_beyond_the_store


def figures(page_small, page_large, database_small, database_large) -> dict:
    return {
        "list_latency_small_ms": page_small,
        "list_latency_large_ms": page_large,
        "list_database_small_ms": database_small,
        "list_database_large_ms": database_large,
    }


def test_the_databases_own_growth_is_taken_out_of_page_one():
    # 4.5 ms -> 11.3 ms, while the database alone went 3.1 ms -> 8.7 ms: 5.7 ms of it is ours
    assert page_one_beyond_the_store(figures(4.5, 11.3, 3.1, 8.7)) == pytest.approx(5.7)


def test_a_database_that_got_faster_credits_nothing():
    assert page_one_beyond_the_store(figures(4.5, 11.3, 3.1, 2.0)) == pytest.approx(11.3)


def test_growth_of_our_own_still_counts():
    # The database did not grow at all: every millisecond of growth is the service's
    assert page_one_beyond_the_store(figures(4.5, 9.5, 3.0, 3.0)) == pytest.approx(9.5)


COLLAPSED = "\n".join(
    [
        # serving a request: our view, waiting for the database
        "Thread.run (threading.py:982);WSGIHandler.__call__ (django/core/handlers/wsgi.py:124);"
        "RequestMiddleware.__call__ (core/observability.py:79);"
        "EstimationViewSet.retrieve (estimations/views.py:199);EstimationStore.get (estimations/store.py:150);"
        "NetworkingInterface.recv_into (pymongo/network_layer.py:441) 6",
        # serving a request: Django's own work, then the standard library's
        "Thread.run (threading.py:982);WSGIHandler.__call__ (django/core/handlers/wsgi.py:124);"
        "URLResolver.resolve (django/urls/resolvers.py:660) 3",
        "Thread.run (threading.py:982);WSGIHandler.__call__ (django/core/handlers/wsgi.py:124);"
        "RequestMiddleware.__call__ (core/observability.py:79);uuid4 (uuid.py:724) 1",
        # not serving a request: left out
        "Thread.run (threading.py:982);PeriodicExecutor._run (pymongo/periodic_executor.py:292) 50",
        "not a stack line",
    ]
)


def test_the_profile_counts_request_threads_only_and_splits_waiting_from_work():
    from bench.profile import WAITING, summarise

    summary = summarise(COLLAPSED)

    assert summary["samples"] == 10
    assert dict(summary["packages"]) == {WAITING: 0.6, "django": 0.3, "stdlib:uuid": 0.1}
    ours = dict(summary["ours"])
    assert ours == {"EstimationViewSet.retrieve": 0.6, "EstimationStore.get": 0.6}  # the middleware wraps all


def test_package_names_come_from_the_frames_path():
    from bench.profile import package_of

    assert package_of("find (pymongo/synchronous/collection.py:1)") == "pymongo"
    assert package_of("dumps (json/__init__.py:231)") == "stdlib:json"
    assert package_of("x (/usr/lib/python3/site-packages/bson/__init__.py:3)") == "bson"
    assert package_of("stamp (estimations/documents.py:70)") == "estimations"


def test_cpu_seconds_counts_a_process_work():
    import os

    from bench.measure import cpu_seconds

    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass

    assert 0.1 <= cpu_seconds(os.getpid()) - before < 5


def test_cpu_lines_name_the_database_only_when_it_was_measured():
    from bench.report import _cpu_lines

    measured = {"ours": {"worker_ms": 1.9, "database_ms": 1.0}, "eve": {"worker_ms": 2.6, "database_ms": 0.9}}
    given = {"ours": {"worker_ms": 1.9, "database_ms": [None, None]}, "eve": {"worker_ms": 2.6, "database_ms": [None]}}

    (line,) = _cpu_lines({"post": measured})
    assert "our worker 1.90 ms, Eve's 2.60 ms; the database server 1.00 ms (ours), 0.90 ms (Eve)" in line
    (line,) = _cpu_lines({"get_item": given})
    assert "GET one" in line and "database" not in line


def test_cpu_per_get_one_is_a_target_against_eves_worker():
    from bench.report import cpu_below_eve

    def cpu(ours: float, eve: float) -> dict:
        return {"cpu": {"get_item": {"ours": {"worker_ms": ours}, "eve": {"worker_ms": eve}}}}

    assert cpu_below_eve(cpu(1.10, 1.25), "get_item")
    assert not cpu_below_eve(cpu(1.25, 1.25), "get_item")
    assert not cpu_below_eve({"cpu": {}}, "get_item")  # not measured: not met


def test_every_round_is_kept_beside_the_median_and_printed():
    from bench.load import alternate
    from bench.report import _round_lines

    figures = iter(
        [{"rps": 700.0, "p99_ms": 40.0}, {"rps": 500.0, "p99_ms": 50.0}] * 2 + [{"rps": 900.0, "p99_ms": 30.0}] * 2
    )
    ours, eve = alternate(3, lambda: next(figures), lambda: next(figures))

    assert ours["rps"] == 700.0 and [r["rps"] for r in ours["rounds"]] == [700.0, 700.0, 900.0]
    assert [r["rps"] for r in eve["rounds"]] == [500.0, 500.0, 900.0]
    (line,) = _round_lines({"post": {"ours": ours, "eve": eve}})
    assert line == "- Each round, req/s ours/Eve: POST 700/500, 700/500, 900/900."


def test_a_figure_is_the_median_of_an_odd_number_of_rounds_so_one_slow_round_cannot_move_it():
    from bench.harness import build_parser
    from bench.load import alternate

    rounds = build_parser().parse_args([]).rounds
    assert rounds % 2 == 1

    # Given Eve slowed down by the machine in one round of the default count
    eve_rounds = iter([531.0, 330.0, *[540.0] * (rounds - 2)])
    (eve,) = alternate(rounds, lambda: {"rps": next(eve_rounds)})

    assert eve["rps"] >= 531.0


def test_a_switch_is_kept_on_the_median_of_its_pairs_counting_the_databases_cpu():
    from bench.switches import CONTROL, summarise

    def pair(a_worker: float, b_worker: float, database: float = 0.5) -> tuple[dict, dict]:
        return {"worker_ms": a_worker, "database_ms": database}, {"worker_ms": b_worker, "database_ms": database}

    pairs = {
        CONTROL: {"post": [pair(2.0, 2.0)] * 3},
        # one pair far off cannot keep it: the median of 1.0, 1.0, 2.0 is 1.0
        "noisy": {"post": [pair(2.0, 2.0), pair(2.0, 2.0), pair(2.0, 4.5)]},
        # +0.15 ms on 2.5 ms (worker + database) is 6%: kept on the list, though not on POST
        "steady": {"post": [pair(2.0, 2.0)] * 3, "list": [pair(2.0, 2.15)] * 3},
    }
    switches = summarise(pairs, {})["switches"]

    assert switches["noisy"]["kept"] is False
    assert switches["steady"]["kept"] is True and switches["steady"]["best_load"] == "list"
    assert switches["steady"]["loads"]["list"]["total_ratio"] == pytest.approx(1.06)
