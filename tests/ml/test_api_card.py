"""GET /models/{version} shows the model card, typed in the OpenAPI schema; older versions say it is missing."""

from __future__ import annotations

import pytest

from ml.serving import model_registry
from tests.model_card import model_card, with_card


@pytest.fixture
def carded(api, trained_model) -> dict:
    """Version 2, stored with a card (version 1, from the api fixture, has none unless training records one)."""
    return model_registry().save(with_card(trained_model))


def test_a_version_shows_its_card(api, carded):
    body = api.get(f"/models/{carded['version']}").json()  # the client checks the body against the schema

    card = body["model_card"]
    assert body["model_card_note"] is None
    assert card["statistic"] == "median" and card["interval"] == [0.1, 0.9]
    assert card["bands"] == {"head": [1, 299], "middle": [300, 30000], "tail": [30001, None]}
    assert set(card["per_category"]) == set(carded["categories"])
    first = carded["categories"][0]
    books = card["per_category"][first]
    assert books == carded["model_card"]["per_category"][first]
    assert [(d["from_rank"], d["to_rank"]) for d in books["slope_by_decade"]][::5] == [(1, 10), (100_000, 1_000_000)]
    assert set(books["coverage"]) == {"overall", "head", "middle", "tail"}
    assert {"training_rows", "holdout_rows", "median_error", "sigma"} <= set(books)


def test_a_version_without_a_card_says_so(api, trained_model):
    registry = model_registry()
    stored = registry.save(trained_model)
    registry.models.update_one({"version": stored["version"]}, {"$unset": {"model_card": ""}})  # as before cards

    response = api.get(f"/models/{stored['version']}")

    assert response.status_code == 200
    body = response.json()
    assert body["model_card"] is None
    assert body["model_card_note"].startswith(f"Not recorded: version {stored['version']} was trained before")
    listed = {m["version"]: m for m in api.get("/models").json()["_items"]}
    assert listed[stored["version"]]["model_card"] is None and listed[stored["version"]]["model_card_note"]


def test_the_list_shows_cards_too(api, carded):
    listed = {m["version"]: m for m in api.get("/models").json()["_items"]}

    assert listed[carded["version"]]["model_card"] == carded["model_card"]


def test_the_schema_types_the_card(openapi_spec):
    schemas = openapi_spec["components"]["schemas"]
    model = schemas["Model"]["properties"]

    # null or a ModelCard (OpenAPI 3.0.3: `nullable` beside an allOf would not reach into the $ref)
    assert model["model_card"]["anyOf"][0] == {"$ref": "#/components/schemas/ModelCard"}
    assert model["model_card"]["anyOf"][1]["enum"] == [None]
    assert "slope by decade" in model["model_card"]["description"]
    card = schemas["ModelCard"]["properties"]
    assert card["per_category"]["additionalProperties"]["$ref"] == "#/components/schemas/CardCategory"
    category = schemas["CardCategory"]["properties"]
    assert category["slope_by_decade"]["items"]["$ref"] == "#/components/schemas/CardDecadeSlope"
    assert category["coverage"]["allOf"][0]["$ref"] == "#/components/schemas/CardCoverage"
    assert category["training_rows"]["type"] == "integer"
    assert schemas["CardCoverage"]["properties"]["tail"]["nullable"] is True
    assert set(schemas["CardCategory"]["required"]) >= {"training_rows", "slope_by_decade", "coverage", "sigma"}


def test_a_stored_card_of_another_shape_is_shown_as_unreadable(api, trained_model):
    """A card edited out of shape in the database answers null and a note, in the schema, not a 500."""
    card = model_card(trained_model.metadata["categories"])
    del card["per_category"][trained_model.metadata["categories"][0]]["coverage"]
    stored = model_registry().save(with_card(trained_model, card))

    body = api.get(f"/models/{stored['version']}").json()  # the client checks the body against the schema

    assert body["model_card"] is None and body["model_card_note"].startswith("Unreadable: version")
