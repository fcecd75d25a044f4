"""The field table drives every field list: validation, the query parser's allow-lists, the CSV
columns, the serializers and the OpenAPI text all say what estimations.fields says."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bson import ObjectId

from core.errors import BadQuery
from estimations import csv_io, fields, list_query, query, schema, sorting, validation
from estimations.documents import to_resource
from estimations.fields import FIELDS
from estimations.serializers import EstimationFormSerializer, EstimationInputSerializer, EstimationSerializer

REPO = Path(__file__).resolve().parents[2]
WRITTEN = [field for field in FIELDS if field.sent is not None]
RULES = validation.Rules(categories=("books",), default_category="books")
# A value of each kind that a where takes, and one of another kind.
KIND_VALUES = {
    "integer": (5, "five"),
    "number": (19.99, "cheap"),
    "string": ("books", 5),
    "boolean": (True, "yes"),
    "id": ("6b0aa8a7e49da0a6640161ec", 5),
    "date": ("Thu, 25 Jun 2020 06:42:02 GMT", 5),
}


def names(where) -> list[str]:
    return [field.name for field in FIELDS if where(field)]


def message(call, *args) -> str:
    with pytest.raises(BadQuery) as caught:
        call(*args)
    return str(caught.value.detail)


class TestTable:
    def test_names_are_unique_and_every_sortable_field_is_filterable(self):
        assert len(fields.BY_NAME) == len(FIELDS)
        assert set(fields.SORTABLE_FIELDS) <= set(fields.FILTERABLE_FIELDS)
        places = [field.sort for field in FIELDS if field.sort]
        assert sorted(places) == list(range(1, len(places) + 1))  # each place once, none skipped

    def test_what_a_client_sends_is_the_content_and_the_rest_read_only(self):
        assert set(fields.INPUT_FIELDS) <= set(fields.CONTENT_FIELDS)
        assert fields.READ_ONLY_FIELDS == {field.name for field in FIELDS} - set(fields.INPUT_FIELDS)
        assert all(field.csv_in <= field.written for field in FIELDS)


class TestOpenApi:
    def test_the_where_text_names_exactly_the_filterable_fields(self, openapi_spec):
        parameters = openapi_spec["paths"]["/estimations"]["get"]["parameters"]
        where = next(parameter for parameter in parameters if parameter["name"] == "where")
        listed = re.search(r"Fields: ([^.]+)\.", where["description"]).group(1).split(", ")

        assert listed == list(fields.FILTERABLE_FIELDS) == list(query.FIELD_TYPES)

    def test_the_request_body_states_each_sent_field_as_the_table_does(self, openapi_spec):
        schema = openapi_spec["components"]["schemas"]["EstimationInputRequest"]

        assert list(schema["properties"]) == list(fields.INPUT_FIELDS)
        # bestseller_rank is required unless rank_history is sent: the schema requires neither
        assert schema.get("required", []) == names(
            lambda f: f.sent is not None and f.sent.required and not f.sent.instead
        )
        for field in WRITTEN:
            stated, sent = schema["properties"][field.name], field.sent
            assert stated.get("nullable", False) == sent.nullable, field.name
            assert stated.get("minimum") == sent.minimum and stated.get("maximum") == sent.maximum, field.name
            assert stated.get("pattern") == sent.pattern, field.name
            assert stated["description"].startswith(sent.help), field.name
            if "allOf" not in stated:  # category is an enum of the active model's categories
                assert stated.get("maxLength") == sent.max_length, field.name

    def test_an_answer_states_every_field_in_the_table_order(self, openapi_spec):
        schemas = openapi_spec["components"]["schemas"]
        shown, written = schemas["Estimation"], schemas["EstimationWritten"]

        assert list(shown["properties"]) == names(lambda field: True)
        assert list(written["properties"]) == [*names(lambda field: True), "_status"]
        assert sorted(shown["required"]) == sorted(names(lambda field: not field.content))
        for field in FIELDS:
            assert shown["properties"][field.name].get("description", "") == field.help, field.name

    def test_the_csv_texts_name_the_table_columns(self, openapi_spec):
        upload = openapi_spec["paths"]["/estimations"]["post"]["requestBody"]["content"]["text/csv"]["schema"]
        required = names(lambda field: field.csv_in and field.sent is not None and field.sent.required)
        optional = names(lambda field: field.csv_in and field.sent is not None and not field.sent.required)

        assert required == ["bestseller_rank"]
        assert optional == ["rank_history", "marketplace", "category", "price", "sku", "actual_sales", "actual_period"]
        assert upload["description"].startswith(
            f"A header row naming {required[0]} (or rank_history, the list's JSON text) and optionally "
            f"{' and '.join(name for name in optional if name != 'rank_history')}, then"
        )
        assert f"({', '.join(fields.CSV_EXPORT_COLUMNS[:5])}, ...)" in schema.CSV_EXPORT.description


class TestQueryParser:
    @pytest.mark.parametrize("field", fields.FILTERABLE_FIELDS)
    def test_a_where_takes_each_filterable_field_with_a_value_of_its_kind(self, field):
        good, bad = KIND_VALUES[fields.BY_NAME[field].kind]

        assert list(query.parse_where(f'{{"{field}": {json.dumps(good)}}}')) == [field]
        assert f"'{field}' takes" in message(query.parse_where, f'{{"{field}": {json.dumps(bad)}}}')

    @pytest.mark.parametrize("field", [field.name for field in FIELDS if not field.filter])
    def test_a_where_refuses_the_other_fields_and_lists_the_filterable_ones(self, field):
        text = message(query.parse_where, f'{{"{field}": 1}}')

        assert text.endswith(f"filterable fields are {', '.join(fields.FILTERABLE_FIELDS)}.")

    def test_a_sort_names_the_sortable_fields_and_no_other(self):
        for field in fields.SORTABLE_FIELDS:
            assert sorting.parse_sort(field)[0][0] == field
        refused = [field.name for field in FIELDS if not field.sort]
        for field in refused:
            assert message(sorting.parse_sort, field).endswith(
                f"sortable fields are {', '.join(fields.SORTABLE_FIELDS)}."
            )

    def test_a_projection_names_the_content_and_no_other(self):
        for field in fields.CONTENT_FIELDS:
            assert query.parse_projection(f'{{"{field}": 0}}') == {field: 0}
        for field in names(lambda field: not field.content):
            assert message(query.parse_projection, f'{{"{field}": 0}}').endswith(
                f"fields are {', '.join(fields.CONTENT_FIELDS)}."
            )

    def test_a_projection_keeps_the_meta_fields(self):
        kept = list_query.ListQuery({}, list(query.DEFAULT_SORT), {"category": 1}, 1, 25).shown(
            {field.name: 1 for field in FIELDS}
        )

        assert set(kept) == {"category"} | fields.META_FIELDS


class TestCsv:
    def test_an_export_has_the_table_columns_in_order(self):
        header = next(csv.reader(io.StringIO(next(csv_io.csv_chunks([])))))

        # The columns an export had before issue 21 keep their places (clients read them by position); the
        # table's later ones follow, in its order.
        later = [name for name in names(lambda field: field.csv_out) if name not in fields.CSV_COLUMNS_BEFORE]
        assert header == [*fields.CSV_COLUMNS_BEFORE, *later] == list(fields.CSV_EXPORT_COLUMNS)
        assert set(header) == {"_id", *fields.CONTENT_FIELDS, "_created", "_updated"}

    def test_an_upload_takes_the_table_columns_and_ignores_the_export_ones(self):
        columns = fields.CSV_EXPORT_COLUMNS
        upload = csv_io.parse_csv(f"{','.join(columns)}\n{','.join(['7'] * len(columns))}\n".encode())

        assert set(upload.rows[0][1]) == set(fields.CSV_IMPORT_COLUMNS)
        assert list(fields.CSV_IMPORT_COLUMNS) == names(lambda field: field.csv_in)

    def test_an_unknown_column_is_refused_naming_the_upload_columns(self):
        with pytest.raises(Exception, match=re.escape(f"the columns are {', '.join(fields.CSV_IMPORT_COLUMNS)}.")):
            csv_io.parse_csv(b"bestseller_rank,colour\n7,red\n")

    def test_a_header_without_a_required_column_is_refused(self):
        for column in csv_io.REQUIRED_COLUMNS:
            instead = fields.BY_NAME[column].sent.instead
            others = [name for name in fields.CSV_IMPORT_COLUMNS if name not in (column, instead)]
            named = f"must name a {column} or a {instead} column" if instead else f"must name a {column} column"
            with pytest.raises(Exception, match=re.escape(named)):
                csv_io.parse_csv((",".join(others) + "\n" + ",".join(["x"] * len(others)) + "\n").encode())
            if instead:  # either is enough
                assert csv_io.parse_csv(f"{instead}\n[]\n".encode()).rows == [(2, {instead: "[]"})]


class TestSerializers:
    def test_the_form_asks_for_the_fields_the_table_marks_for_it(self, monkeypatch):
        monkeypatch.setattr("estimations.serializers.known_categories", lambda: ("books", "toys_games"))
        monkeypatch.setattr("estimations.serializers.known_marketplaces", lambda: ("de", "uk", "us"))
        form = EstimationFormSerializer().fields

        assert list(form) == names(lambda field: field.sent is not None and field.sent.form)
        assert not any(getattr(form[name], "allow_null", False) for name in form)
        assert form["sku"].help_text == fields.BY_NAME["sku"].sent.form_help
        assert list(form["category"].choices) == ["books", "toys_games"]
        assert list(form["marketplace"].choices) == ["us", "de", "uk"]  # DEFAULT_MARKETPLACE first

    def test_the_input_and_the_answer_have_the_table_fields(self, monkeypatch):
        monkeypatch.setattr("estimations.serializers.known_categories", lambda: ())
        monkeypatch.setattr("estimations.serializers.known_marketplaces", lambda: ())
        given = EstimationInputSerializer().fields

        assert list(given) == list(fields.INPUT_FIELDS)
        for field in WRITTEN:
            assert given[field.name].required == (field.sent.required and not field.sent.instead), field.name
            assert given[field.name].allow_null == field.sent.nullable, field.name
        assert list(EstimationSerializer().fields) == names(lambda field: True)


class TestValidation:
    def test_each_sent_field_has_its_check(self):
        assert list(validation.CHECKS) == list(fields.INPUT_FIELDS)

    @pytest.mark.parametrize("field", WRITTEN, ids=lambda field: field.name)
    def test_a_value_of_another_kind_is_refused_and_null_only_where_the_table_allows(self, field):
        given = {"bestseller_rank": 70, "actual_sales": 3, "actual_period": "2026-10"}
        removed = dict.fromkeys(fields.ACTUAL_FIELDS) if field.part == "actual" else {}  # both or neither

        _, issues = validation.validate({**given, field.name: [1]}, RULES)
        assert field.name in issues
        _, issues = validation.validate({**removed, field.name: None}, RULES, partial=True)
        assert (field.name in issues) != field.sent.nullable

    @pytest.mark.parametrize("field", WRITTEN, ids=lambda field: field.name)
    def test_the_limits_enforced_are_the_tables(self, field):
        sent, base = field.sent, {"bestseller_rank": 70, "actual_sales": 3, "actual_period": "2026-10"}
        long_category, long_market = "c" * (sent.max_length or 0), "m" * (sent.max_length or 0)
        known = ("books", long_category)
        rules = validation.Rules(categories=known, default_category="books", markets={"us": known, long_market: known})

        def issue(value):
            return validation.validate({**base, field.name: value}, rules)[1].get(field.name)

        if sent.minimum is not None:
            assert issue(sent.minimum) is None and issue(sent.minimum - 1)
        if sent.maximum is not None:
            assert issue(sent.maximum) is None and issue(sent.maximum + 1)
        if sent.max_length is not None:
            value = {"category": long_category, "marketplace": long_market}.get(field.name, "S" * sent.max_length)
            assert issue(value) is None and issue(value + "x")
        if field.kind == "history":  # its limits are ml.history's (tests/estimations/test_new_inputs.py)
            start = datetime(2026, 8, 1, tzinfo=UTC)
            samples = [{"at": (start + timedelta(hours=hour)).isoformat(), "rank": 70} for hour in range(2161)]
            assert issue(samples[1:]) is None and "at most 2,160" in issue(samples)
            continue_check = True
        else:
            continue_check = False
        if sent.pattern is not None:
            assert re.fullmatch(sent.pattern, "2026-10") and not re.fullmatch(sent.pattern, "2026-13")
            assert issue("2026-10") is None and issue("2026-13")
        assert continue_check or any(limit is not None for limit in (sent.minimum, sent.max_length, sent.pattern))

    @pytest.mark.parametrize("field", sorted(fields.READ_ONLY_FIELDS))
    def test_a_field_the_client_does_not_send_is_read_only(self, field):
        _, issues = validation.validate({"bestseller_rank": 70, field: 1}, RULES)

        assert issues == {field: validation.ISSUE_READ_ONLY}

    def test_the_required_fields_are_the_tables(self):
        _, issues = validation.validate({}, RULES)

        assert issues == dict.fromkeys(
            names(lambda field: field.sent is not None and field.sent.required), "required field"
        )


def test_an_answer_shows_the_fields_in_the_table_order():
    now = datetime(2026, 10, 1, tzinfo=UTC)
    document = {field.name: 1 for field in FIELDS if field.content}
    shown = to_resource({**document, "_id": ObjectId(), "_created": now, "_updated": now, "_etag": "e"})

    assert list(shown) == names(lambda field: True)


def field_lists(source: str) -> list[tuple[int, list[str]]]:
    """Each literal list, tuple or set in ``source`` that names three or more of the table's fields."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            texts = [item.value for item in node.elts if isinstance(item, ast.Constant) and isinstance(item.value, str)]
            named = [text for text in texts if text in fields.BY_NAME]
            # Three or more of the table's names and nothing else (a training CSV's columns, which share
            # some names, are another list).
            if len(named) >= 3 and len(named) == len(texts):
                found.append((node.lineno, named))
    return found


def test_no_module_states_a_field_list_of_its_own():
    """Such a list anywhere in the apps but the table is a second field list, which would drift: derive
    it from estimations.fields instead."""
    found = {
        str(path.relative_to(REPO)): lists
        for package in ("core", "ml", "estimations", "modelops", "estimator_project")
        for path in sorted((REPO / package).rglob("*.py"))
        if path != REPO / "estimations" / "fields.py" and (lists := field_lists(path.read_text()))
    }

    assert found == {}


def test_the_check_sees_a_field_list():
    source = 'COLUMNS = ("bestseller_rank", "category", "sku")\nWHERE = {"category": 1}\nPAIR = ["_id", "sku"]\n'

    assert field_lists(source) == [(1, ["bestseller_rank", "category", "sku"])]
    assert field_lists('TRAINING = ("category", "bestseller_rank", "monthly_sales", "marketplace")\n') == []


def test_the_api_guide_lists_the_table_fields():
    """docs/api.md names the filterable fields and the export's columns as the table has them."""
    guide = " ".join((REPO / "docs" / "api.md").read_text().split())
    where = re.search(r"`where`: a MongoDB-style JSON filter on (.+?),? with the operators", guide)
    export = re.search(r"CSV download \(`([^`]+)`\)", guide)

    assert where and re.findall(r"`([^`]+)`", where.group(1)) == list(fields.FILTERABLE_FIELDS)
    assert export and export.group(1).split(", ") == list(fields.CSV_EXPORT_COLUMNS)
