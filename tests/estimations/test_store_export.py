"""The store's export (EstimationStore.export): a failed batch is read again after the last row sent, and
an export that still fails, runs out of server time or passes the row bound is cut short."""

from __future__ import annotations

import mongomock
import pytest
from pymongo.errors import ExecutionTimeout

from estimations.list_query import ListQuery
from estimations.store import EstimationStore
from tests.helpers import new_document


class FlakyCursor:
    """A cursor whose batches fail as told: ``failures`` AutoReconnects once ``rows`` documents were read."""

    def __init__(self, cursor, rows: int | None, error: Exception):
        self.cursor, self.rows, self.error, self.read = cursor, rows, error, 0
        self.max_time_ms_set: list[int] = []

    def sort(self, *args):
        self.cursor = self.cursor.sort(*args)
        return self

    def batch_size(self, size):
        self.cursor = self.cursor.batch_size(size)
        return self

    def limit(self, count):
        self.cursor = self.cursor.limit(count)
        return self

    def max_time_ms(self, ms):
        self.max_time_ms_set.append(ms)
        return self

    def close(self):
        pass

    def __iter__(self):
        return self

    def __next__(self):
        if self.rows is not None and self.read >= self.rows:
            raise self.error
        self.read += 1
        return next(self.cursor)


class TestExport:
    @pytest.fixture
    def store(self, monkeypatch):
        monkeypatch.setattr("estimations.store_export.EXPORT_RESUME_DELAYS", (0.0, 0.0, 0.0))
        store = EstimationStore(mongomock.MongoClient().db.estimations)
        store.collection.insert_many([new_document(rank) for rank in range(1, 51)])
        return store

    def failing(self, store, monkeypatch, plan: list[tuple[int | None, Exception]]):
        """collection.find returns cursors failing per ``plan`` (one entry per find), then good ones."""
        real, opened = store.collection.find, []

        def find(*args, **kwargs):
            rows, error = plan[len(opened)] if len(opened) < len(plan) else (None, None)
            opened.append(FlakyCursor(real(*args, **kwargs), rows, error))
            return opened[-1]

        monkeypatch.setattr(store.collection, "find", find)
        return opened

    def query(self, sort=(("bestseller_rank", -1), ("_id", -1))) -> ListQuery:
        return ListQuery(filter={}, sort=list(sort), projection=None, page=1, max_results=10)

    def test_a_failed_batch_is_read_again_after_the_last_row_sent(self, store, monkeypatch, caplog):
        from pymongo.errors import AutoReconnect, CursorNotFound, NotPrimaryError

        # Given batches failing after 12 rows (a failover), then 3 more of the resumed cursor, then 0 more
        opened = self.failing(
            store,
            monkeypatch,
            [
                (12, AutoReconnect("primary stepped down")),
                (3, CursorNotFound("cursor id not found")),
                (0, NotPrimaryError("not primary")),
            ],
        )

        rows = [document["bestseller_rank"] for document in store.export(self.query(), max_time_ms=60_000)]

        # Then every row comes once, in the sort, through three resumed cursors with what is left of the time
        assert rows == list(range(50, 0, -1))
        assert len(opened) == 4
        assert opened[0].max_time_ms_set == [60_000] and all(0 < c.max_time_ms_set[0] <= 60_000 for c in opened[1:])
        assert caplog.text.count("resuming after the last row sent") == 3

    def test_an_export_that_still_fails_is_cut_short(self, store, monkeypatch):
        from pymongo.errors import AutoReconnect

        from estimations.store_export import ExportIncomplete

        self.failing(store, monkeypatch, [(12, AutoReconnect("gone"))] + [(0, AutoReconnect("gone"))] * 3)
        rows = []

        with pytest.raises(ExportIncomplete, match="failed 4 times after 12 rows"):
            rows.extend(store.export(self.query()))
        assert len(rows) == 12

    def test_out_of_server_time_is_cut_short_not_resumed(self, store, monkeypatch):
        from estimations.store_export import ExportIncomplete

        opened = self.failing(store, monkeypatch, [(20, ExecutionTimeout("operation exceeded time limit", code=50))])

        with pytest.raises(ExportIncomplete, match="database time after 20 rows"):
            list(store.export(self.query(), max_time_ms=1000))
        assert len(opened) == 1

    def test_more_rows_than_the_bound_are_cut_short(self, store):
        from estimations.store_export import ExportIncomplete

        rows = []
        with pytest.raises(ExportIncomplete, match="more than its 30 rows"):
            rows.extend(store.export(self.query(), max_rows=30))
        assert len(rows) == 30
        assert len(list(store.export(self.query(), max_rows=50))) == 50
