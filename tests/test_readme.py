"""The README's curl session, run as printed against the production server on a wire-protocol store."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, trained_database
from tests.readme_session import (
    README,
    assert_readme_session,
    parse_console_blocks,
    rewrite_readme_session,
    run_readme_session,
)

SIGNING_KEY = "readme-session-signing-key-not-a-secret"
MAX_README_LINES = 360  # a user's guide of about 350 lines; details live in docs/
LINK = re.compile(r"\[[^\]]*\]\(([^()\s]+)\)")  # [text](target), the form these files use
FILE_NAMED = re.compile(
    r"`([\w.-]+(?:/[\w.-]+)*/[\w.-]+\.[a-z]+)(?:::\w+)?`"
)  # `estimations/x.py`, `tests/t.py::test_x`

BULK_AS_PRINTED = """-H 'Content-Type: application/json' \\
    -d '[{"bestseller_rank": 1500, "category": "toys_games", "sku": "TOY-RC-CAR"}, {"bestseller_rank": 25000,"""
BULK_AS_IT_WAS = """-H 'Content-Type: application/json' -d '[{"bestseller_rank": 1500, "category": "toys_games", \\
    "sku": "TOY-RC-CAR"}, {"bestseller_rank": 25000,"""


def the_guides() -> list[Path]:
    return [README, *sorted((README.parent / "docs").glob("*.md"))]


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, without inline code spans."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped, spaces as '-'."""
    seen: dict[str, int] = {}
    for line in prose(page.read_text()):
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            seen[slug] = seen.get(slug, -1) + 1
            if seen[slug]:
                seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def broken_links(pages: Iterable[Path]) -> list[str]:
    """Every relative link of ``pages`` whose file, or whose anchor in a markdown file, does not exist."""
    broken = []
    for page in pages:
        for line in prose(page.read_text()):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:
                    continue
                path, _, anchor = target.partition("#")
                linked = (page.parent / path) if path else page
                if not linked.exists():
                    broken.append(f"{page.name}: {target} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    broken.append(f"{page.name}: {target} (no such heading in {linked.name})")
    return broken


def test_the_readme_is_a_short_guide():
    lines = README.read_text().splitlines()

    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines: move details to a docs/ page"
    assert "make run" in "\n".join(lines[:20]) and "make test" in "\n".join(lines[:20])


def test_every_relative_link_in_the_readme_and_docs_resolves():
    pages = the_guides()

    assert len(pages) > 5 and sum(len(LINK.findall(page.read_text())) for page in pages) > 20
    assert broken_links(pages) == []
    linked = {
        (page.parent / target.partition("#")[0]).resolve()
        for page in pages
        for target in LINK.findall(page.read_text())
        if target.partition("#")[0] and (page.parent / target.partition("#")[0]).resolve() != page.resolve()
    }
    assert [page.name for page in pages[1:] if page.resolve() not in linked] == [], (
        "a docs/ page neither the README nor another page links"
    )


# What the benchmarks write (git-ignored): named in the docs, present only after a run.
GENERATED = ("bench/results/",)


def missing_files(pages: Iterable[Path]) -> list[str]:
    """Every repository file a page names in code (`dir/file.py`, `tests/t.py::test`) that does not exist."""
    root = README.parent
    return [
        f"{page.name}: {named}"
        for page in pages
        for named in FILE_NAMED.findall(page.read_text())
        if not (root / named).is_file() and not named.startswith(GENERATED)
    ]


def test_every_file_the_readme_and_docs_name_exists():
    pages = the_guides()

    assert sum(len(FILE_NAMED.findall(page.read_text())) for page in pages) > 20
    assert missing_files(pages) == [], "a file moved or went: say where it is now"


def test_a_file_named_that_does_not_exist_is_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("`tests/test_readme.py`, `tests/test_readme.py::test_x`, `ml/gone.py` and `text/csv`.\n")

    assert missing_files([page]) == ["page.md: ml/gone.py"]


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ops.md").write_text("# Operating it\n\n## Indexes\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "README.md"
    page.write_text(
        "See [ops](docs/ops.md#indexes), [gone](docs/gone.md), [typo](docs/ops.md#index),\n"
        "[code](docs/ops.md#not-a-heading), [here](#see) and [web](https://example.com/x.md).\n"
        "`[not a link](nowhere.md)`\n\n## See\n"
    )

    assert broken_links([page]) == [
        "README.md: docs/gone.md (no such file)",
        "README.md: docs/ops.md#index (no such heading in ops.md)",
        "README.md: docs/ops.md#not-a-heading (no such heading in ops.md)",
    ]


@pytest.fixture(scope="module")
def readme_server(wire_server, tmp_path_factory) -> Iterator[tuple[LiveServer, str]]:
    """The production server (as `make run` configures it, on a MongoDB wire store) with the default model."""
    with trained_database(wire_server, "test_readme", SIGNING_KEY) as database:
        server = LiveServer(
            {"MONGO_URI": wire_server.uri, "MONGO_DB_NAME": database, "MODEL_SIGNING_KEY": SIGNING_KEY},
            tmp_path_factory.mktemp("readme") / "server.log",
        )
        server.start()
        try:
            yield server, database
        finally:
            server.stop()


def forget_estimations(database: str, wire_server) -> None:
    """Back to the README's starting point: the default model and no estimations."""
    import pymongo

    client = pymongo.MongoClient(wire_server.uri)
    try:
        client[database]["estimations"].delete_many({})
    finally:
        client.close()


def test_the_session_lists_the_commands_the_readme_shows():
    steps = parse_console_blocks(README.read_text())
    commands = [step.command for step in steps]

    assert len(commands) >= 15
    assert commands[0].startswith("curl -i -X POST localhost:8000/estimations")
    assert sum(command.startswith("cat ") for command in commands) == 2
    # A section per input of issue 21, each with a real exchange.
    assert all(any(name in command for command in commands) for name in ("marketplace", "rank_history", "price"))
    bulk = next(step for step in steps if "TOY-RC-CAR" in step.command)
    assert "\n" in bulk.command and bulk.expected[0].startswith('{"_status":"OK","_items":[')


@pytest.mark.integration
class TestReadmeSession:
    def test_every_answer_is_as_the_readme_shows(self, readme_server, wire_server, tmp_path):
        server, database = readme_server
        forget_estimations(database, wire_server)
        if os.environ.get("README_REWRITE"):  # `make readme-session`: write the live answers into the README
            rewrite_readme_session(server.url, tmp_path)
            forget_estimations(database, wire_server)

        steps = assert_readme_session(server.url, tmp_path)

        assert sum("curl" in step.command for step in steps) >= 15
        assert (tmp_path / "products.csv").read_text().startswith("bestseller_rank,category,sku\n")

    @pytest.mark.parametrize(
        ("printed", "drifted", "reported"),
        [
            (
                "HTTP/1.1 201 Created",
                "HTTP/1.1 200 OK",
                "status: expected 'HTTP/1.1 200 OK', got 'HTTP/1.1 201 Created'",
            ),
            ("Content-Type: application/json\nLocation", "Content-Type: text/html\nLocation", "header Content-Type"),
            ('"extrapolated":false,"model_version":1,"_created"', '"model_version":1,"_created"', "keys differ"),
            ('"category":"books","estimated_sales":4801', '"category":"toys","estimated_sales":4801', "'toys'"),
            ('"estimated_sales_low":27,', '"estimated_sales_low":"27",', "expected str '27', got int 27"),
            ('"rmse_log1p": 0.060404101141728006', '"rmse_log1p": 0.0605', "expected 0.0605, got 0.0604"),
            ("MUG-BLUE,138,", "MUG-BLUE,139,", "CSV row 2, estimated_sales: expected '139', got '138'"),
            (
                "$ cat bad.csv\nbestseller_rank,category\n120,books\nabc",
                "$ cat bad.csv\nbestseller_rank,category\n120,books\n7",
                "2 CSV row",
            ),
            (
                BULK_AS_PRINTED,
                BULK_AS_IT_WAS,
                "body._status: expected 'OK', got 'ERR'",
            ),  # issue 16: 400 with `\\` inside the quotes
        ],
        ids=[
            "status",
            "header",
            "a-key-gone",
            "a-value",
            "a-type",
            "a-float",
            "a-csv-cell",
            "a-file-shown",
            "bulk-quoting-as-before",
        ],
    )
    def test_a_readme_that_drifts_fails(self, readme_server, wire_server, tmp_path, printed, drifted, reported):
        server, database = readme_server
        forget_estimations(database, wire_server)
        text = README.read_text()
        assert printed in text, "the README changed: update this test's edit"
        scratch = tmp_path / "README.md"
        scratch.write_text(text.replace(printed, drifted, 1))
        workdir = tmp_path / "session"
        workdir.mkdir()

        steps = run_readme_session(server.url, workdir, readme=scratch)

        problems = [problem for step in steps for problem in step.problems]
        if reported is None:
            assert problems == []
        else:
            assert any(reported in problem for problem in problems), problems


def test_ids_and_etags_are_bound_once_and_put_into_later_commands():
    from tests.readme_session import Bindings

    bindings = Bindings()
    readme_id, live_id = "6b0ad57f7503e623c0e10f50", "70aa00000000000000000001"

    assert bindings.match(f"http://h/estimations/{readme_id}", f"http://h/estimations/{live_id}") is None
    assert bindings.substitute(f"curl h/estimations/{readme_id} -H 'If-Match: \"x\"'") == (
        f"curl h/estimations/{live_id} -H 'If-Match: \"x\"'"
    )
    assert "was bound to" in bindings.match(readme_id, "70aa00000000000000000002")
    assert "seen before" in bindings.match("6b0ad57f7503e623c0e10f51", live_id)
    assert bindings.match("Sat, 28 Nov 2026 13:22:07 GMT", "Tue, 01 Dec 2026 09:00:00 GMT") is None
    assert bindings.match("Sat, 28 Nov 2026 13:22:07 GMT", "yesterday") is not None
