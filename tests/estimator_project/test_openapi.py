"""The OpenAPI schema, the docs pages (offline), the browsable API, and the schema-checking client."""

from __future__ import annotations

import copy
import json
import re
from http import HTTPStatus

import pytest
from django.core.management import call_command
from openapi_spec_validator import validate

from estimations import validation
from estimations.fields import INPUT_FIELDS
from estimations.serializers import EstimationInputSerializer
from ml.serving import get_estimator
from tests.conftest import SchemaCheckingClient

ERROR_REF = "#/components/schemas/Error"


def test_schema_is_valid_openapi(openapi_spec):
    validate(openapi_spec)


def test_schema_generates_without_a_warning(tmp_path):
    # drf-spectacular warns where it had to guess; a guess is a schema a client cannot trust.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3")


def test_operation_ids_are_unique_and_named_after_actions(openapi_spec):
    ids = [op["operationId"] for path in openapi_spec["paths"].values() for op in path.values()]

    assert len(ids) == len(set(ids))
    assert {"estimations_list", "estimations_create", "estimations_retrieve", "estimations_destroy"} <= set(ids)


def test_schema_names_eves_paths_and_every_operation(openapi_spec):
    assert set(openapi_spec["paths"]) == {
        "/",
        "/estimations",
        "/estimations/{id}",
        "/models",
        "/models/{version}",
        "/models/{version}/activate",
        "/models/{version}/accuracy",
        "/models/{version}/replay",
        "/models/{version}/replays",
        "/models/jobs/{id}",
        "/audit",
    }
    assert set(openapi_spec["paths"]["/estimations"]) >= {"get", "post"}
    assert set(openapi_spec["paths"]["/estimations/{id}"]) >= {"get", "put", "patch", "delete"}


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/estimations", "post", {"201", "400", "413", "415", "422", "503"}),
        ("/estimations", "get", {"200", "400", "503"}),
        ("/estimations/{id}", "get", {"200", "304", "404"}),
        ("/estimations/{id}", "put", {"200", "404", "412", "422", "428"}),
        ("/estimations/{id}", "patch", {"200", "404", "412", "422", "428"}),
        ("/estimations/{id}", "delete", {"204", "404", "412", "428"}),
        ("/models/{version}/accuracy", "get", {"200", "404", "503"}),
        ("/models/{version}/replay", "post", {"201", "401", "403", "404", "409", "422", "503"}),
        ("/audit", "get", {"200", "400", "401", "403", "503"}),
        ("/models", "post", {"202", "400", "401", "403", "413", "415", "503"}),
        ("/models/jobs/{id}", "get", {"200", "401", "403", "404", "503"}),
    ],
)
def test_every_status_is_documented_and_errors_use_the_envelope(openapi_spec, path, method, codes):
    responses = openapi_spec["paths"][path][method]["responses"]

    assert codes <= set(responses), sorted(responses)
    for code, response in responses.items():
        if code == "414":  # gunicorn answers an over-long URL before the app: documented, not enveloped
            assert "content" not in response
            continue
        if code.startswith(("4", "5")):
            assert response["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, code


def test_create_accepts_one_object_or_a_list(openapi_spec):
    body = openapi_spec["paths"]["/estimations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    one_of = openapi_spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["oneOf"]

    assert {"type": "array", "items": {"$ref": "#/components/schemas/EstimationInputRequest"}} in one_of
    assert {"$ref": "#/components/schemas/EstimationInputRequest"} in one_of


def test_input_schema_states_what_the_validator_enforces(openapi_spec, trained_model):
    schema = openapi_spec["components"]["schemas"]["EstimationInputRequest"]
    rank = schema["properties"]["bestseller_rank"]

    # A rank or a rank_history: neither is required alone (the validator asks for one of them).
    assert "required" not in schema and "rank_history" in rank["description"]
    assert (rank["type"], rank["minimum"], rank["maximum"]) == ("integer", validation.MIN_RANK, validation.MAX_RANK)
    served = {name for names in trained_model.metadata["markets"].values() for name in names}
    assert set(openapi_spec["components"]["schemas"]["CategoryEnum"]["enum"]) == served
    assert set(schema["properties"]) == set(INPUT_FIELDS)


def test_form_serializer_and_validator_agree(active_model):
    fields = EstimationInputSerializer().fields

    assert set(fields) == set(INPUT_FIELDS)
    assert fields["bestseller_rank"].min_value == validation.MIN_RANK
    assert fields["bestseller_rank"].max_value == validation.MAX_RANK
    assert set(fields["category"].choices) == {name for names in active_model["markets"].values() for name in names}
    assert not fields["bestseller_rank"].required and not fields["category"].required  # or a rank_history


class TestSchemaCheckingClient:
    """The client every API test uses must fail on an answer the schema does not describe."""

    def test_undocumented_status_fails(self, openapi_spec, mongo_db):
        spec = copy.deepcopy(openapi_spec)
        del spec["paths"]["/estimations/{id}"]["get"]["responses"]["404"]

        with pytest.raises(AssertionError, match="status not in the schema"):
            SchemaCheckingClient(spec).get("/estimations/6b0aa8a7e49da0a6640161ec")

    def test_body_that_does_not_match_fails(self, openapi_spec, mongo_db):
        spec = copy.deepcopy(openapi_spec)
        spec["components"]["schemas"]["Meta"]["properties"]["total"] = {"type": "string"}

        with pytest.raises(AssertionError, match="does not match the schema"):
            SchemaCheckingClient(spec).get("/estimations")

    def test_matching_answers_are_counted(self, openapi_spec, mongo_db):
        client = SchemaCheckingClient(openapi_spec)

        client.get("/estimations")
        client.get("/estimations/nope")

        assert client.checked == 2


class TestDocsPages:
    @pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
    def test_served_with_local_assets_only(self, client, path):
        response = client.get(path)

        assert response.status_code == HTTPStatus.OK
        html = response.content.decode()
        assert "/api/schema/" in html
        external = re.findall(r"(?:src|href)=\"(https?://[^\"]+)\"", html)
        assert external == [], external
        for asset in re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", html):
            assert client.get(asset).status_code == HTTPStatus.OK, asset

    def test_schema_endpoint_serves_yaml_and_json(self, client):
        assert client.get("/api/schema/").content.startswith(b"openapi: 3")
        as_json = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert json.loads(as_json.content)["openapi"].startswith("3")


class TestBrowsableApi:
    def test_list_page_has_a_form_to_post_an_estimation(self, api):
        response = api.get("/estimations", HTTP_ACCEPT="text/html")

        assert response.status_code == HTTPStatus.OK
        html = response.content.decode()
        assert 'name="bestseller_rank"' in html
        assert re.search(r'<select[^>]+name="category"', html)
        for category in get_estimator().categories:  # the active model's
            assert f'value="{category}"' in html

    def test_item_page_renders(self, api):
        created = api.post("/estimations", {"bestseller_rank": 70}, format="json").json()

        response = api.get(f"/estimations/{created['_id']}", HTTP_ACCEPT="text/html")

        assert response.status_code == HTTPStatus.OK
        assert created["_etag"] in response.content.decode()

    def test_home_page_renders(self, api):
        assert api.get("/", HTTP_ACCEPT="text/html").status_code == HTTPStatus.OK


def test_the_forms_first_category_is_the_default(api, settings):
    settings.DEFAULT_CATEGORY = "toys_games"

    html = api.get("/estimations", HTTP_ACCEPT="text/html").content.decode()

    options = re.findall(r'<option value="([a-z_]+)"', html.split('name="category"', 1)[1])
    assert options[0] == "toys_games"


def test_the_estimation_schema_documents_the_loop_fields(openapi_spec):
    properties = openapi_spec["components"]["schemas"]["Estimation"]["properties"]

    assert properties["extrapolated"]["type"] == "boolean"
    assert "outside the ranks the model saw" in properties["extrapolated"]["description"]
    for field in ("sku", "actual_sales", "actual_period"):
        assert field in properties, field
    export = openapi_spec["paths"]["/estimations"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/json", "text/csv"}
    assert "text/csv" in openapi_spec["paths"]["/estimations"]["post"]["requestBody"]["content"]
