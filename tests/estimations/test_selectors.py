"""The selectors model operations read the stored estimations through (mongomock and nx-27017 alike)."""

from __future__ import annotations

import pytest

from estimations import selectors
from estimations.documents import stamp
from estimations.store import estimation_store

FIELDS = {"_id": 0, "bestseller_rank": 1, "category": 1, "actual_sales": 1}


@pytest.fixture
def stored(mongo_db) -> list[dict]:
    """Six estimations by two model versions, the first three of version 1 with actuals."""
    documents = []
    for rank in range(1, 7):
        fields = {"bestseller_rank": rank, "category": "books", "estimated_sales": 10 * rank}
        fields["model_version"] = 1 if rank <= 4 else 2
        if rank <= 3:
            fields["actual_sales"] = rank
        documents.append(stamp(fields))
    return estimation_store().insert_many(documents)


def test_with_actuals_are_one_versions_estimations_with_actuals_as_projected(stored):
    rows = list(selectors.estimations_with_actuals(version=1, projection=FIELDS))

    assert sorted(row["bestseller_rank"] for row in rows) == [1, 2, 3]
    assert all(set(row) == {"bestseller_rank", "category", "actual_sales"} for row in rows)
    assert list(selectors.estimations_with_actuals(version=2, projection=FIELDS)) == []


def test_the_versions_with_actuals(stored):
    assert selectors.versions_with_actuals() == {1}


def test_newest_first_within_the_filter_and_the_limit(stored):
    newest = selectors.estimations_newest(filter_={"model_version": 1}, limit=2)

    assert [document["bestseller_rank"] for document in newest] == [4, 3]


def test_a_sample_is_all_of_them_unless_fewer_are_asked_for(stored):
    everything, total = selectors.estimations_sample(projection=FIELDS, size=None)
    assert total == 6 and sorted(row["bestseller_rank"] for row in everything) == [1, 2, 3, 4, 5, 6]

    more, total = selectors.estimations_sample(projection=FIELDS, size=10)
    assert total == 6 and len(list(more)) == 6

    some, size = selectors.estimations_sample(projection=FIELDS, size=4)
    rows = list(some)
    assert size == 4 and len(rows) == 4 and len({row["bestseller_rank"] for row in rows}) == 4
