"""The layers run one way: each app imports only the apps below it (read from the code's ``ast``)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Bottom first: an app may import the apps before it in this list, never one after it.
LAYERS = ("core", "ml", "estimations", "modelops", "estimator_project")
# The project package only wires the apps together.
PROJECT_MODULES = {"__init__", "settings", "urls", "wsgi", "asgi", "gunicorn.conf", "health"}


def imported_apps(path: Path) -> set[str]:
    """The top-level packages of LAYERS that ``path`` imports, anywhere in it (functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importing app, imported app) -> the importing files."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            for other in imported_apps(path) - {app}:
                edges[(app, other)].append(str(path.relative_to(ROOT)))
    return edges


def test_each_app_imports_only_the_apps_below_it():
    upward = {
        f"{app} -> {other}": files
        for (app, other), files in import_graph().items()
        if LAYERS.index(other) > LAYERS.index(app)
    }
    assert upward == {}, f"imports that run up the layers {LAYERS}: {upward}"


def test_no_two_apps_import_each_other():
    edges = import_graph()
    circles = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert circles == []


def test_ml_imports_only_core_and_estimations_imports_core_and_ml():
    edges = import_graph()
    assert {other for app, other in edges if app == "ml"} <= {"core"}
    assert {other for app, other in edges if app == "estimations"} <= {"core", "ml"}
    assert {other for app, other in edges if app == "core"} == set()


def test_the_project_package_only_wires():
    modules = {
        str(p.relative_to(ROOT / "estimator_project").with_suffix(""))
        for p in (ROOT / "estimator_project").glob("*.py")
    }
    assert modules <= PROJECT_MODULES, f"domain or kit code in the project package: {sorted(modules - PROJECT_MODULES)}"


def test_the_check_sees_an_upward_import(tmp_path):
    """The reader finds imports inside functions and ``from x import y`` alike, so the tests above can fail."""
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom modelops.api import X\n\ndef f():\n    import estimations.views\n")
    assert imported_apps(sample) == {"modelops", "estimations"}


# --- only the stores touch MongoDB collections ------------------------------------------------------

# Each a class (or its helpers) owning its collection; every other module asks one of these.
STORE_MODULES = {
    "core/api_keys.py",  # ApiKeyStore
    "core/audit.py",  # AuditLog
    "core/index_sync.py",  # the stores' index roll-out (OwnIndexes)
    "core/throttling.py",  # MongoCounters
    "ml/registry.py",  # ModelRegistry (models, model_state, the artifacts' GridFS bucket)
    "ml/job_store.py",  # TrainingJobs
    "estimations/store.py",  # EstimationStore
    "core/runtime/group_insert.py",  # the store's shared insert
    "modelops/replay_reports.py",  # ReplayReports
}
HANDLES = {"database", "client"}


def raw_collection_uses(path: Path) -> list[str]:
    """Where ``path`` reaches a collection itself: ``x.collection``, ``get_database()[...]``,
    ``database[...]`` or ``client[...]`` (line numbers and the code)."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "collection":
            found.append(node)
        elif isinstance(node, ast.Subscript):
            target = node.value
            if isinstance(target, ast.Call):
                target = target.func
            name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
            if name in HANDLES or name == "get_database":
                found.append(node)
    return [f"{node.lineno}: {ast.get_source_segment(source, node)}" for node in sorted(found, key=lambda n: n.lineno)]


def test_no_module_outside_the_stores_touches_a_raw_collection():
    touching = {
        str(path.relative_to(ROOT)): uses
        for app in LAYERS
        for path in sorted((ROOT / app).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in STORE_MODULES and (uses := raw_collection_uses(path))
    }
    assert touching == {}, f"collections reached outside the stores {sorted(STORE_MODULES)}: {touching}"


def test_every_listed_store_module_exists():
    assert sorted(name for name in STORE_MODULES if not (ROOT / name).is_file()) == []


def test_the_check_sees_a_raw_collection(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "store.collection.find({})\nget_database()['x'].drop()\nself.database['y']\nclient[name]\nrows['ok']\n"
    )
    assert [use.split(":")[0] for use in raw_collection_uses(sample)] == ["1", "2", "3", "4"]


# --- small modules ---------------------------------------------------------------------------------

MAX_MODULE_LINES = 400


def test_no_module_in_the_apps_or_bench_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for app in (*LAYERS, "bench")
        for path in sorted((ROOT / app).rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


MAX_DOCSTRING_LINES = 5


def long_docstrings(paths) -> dict[str, int]:
    """Module docstrings over MAX_DOCSTRING_LINES lines: a docstring says what the module is for."""
    found = {}
    for path in paths:
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        if docstring and len(docstring.splitlines()) > MAX_DOCSTRING_LINES:
            found[str(path)] = len(docstring.splitlines())
    return found


def test_module_docstrings_say_what_a_module_is_for_in_at_most_five_lines():
    paths = [path for app in (*LAYERS, "bench") for path in sorted((ROOT / app).rglob("*.py"))]
    assert long_docstrings(paths) == {}, "longer notes belong in docs/architecture.md"


def test_the_check_sees_a_long_docstring(tmp_path):
    short, long = tmp_path / "short.py", tmp_path / "long.py"
    short.write_text('"""One line."""\n')
    long.write_text('"""' + "\n".join(f"line {n}" for n in range(6)) + '"""\n')
    assert long_docstrings([short, long]) == {str(long): 6}


# --- the tests mirror the code -------------------------------------------------------------------------

TESTS = ROOT / "tests"
# A folder of tests is named after what it tests: an app, bench/, or deploy/ (Dockerfile, compose, nginx).
TESTED_FOLDERS = (*LAYERS, "bench", "deploy")
MAX_LINES = 400


def test_each_folder_of_tests_is_named_after_an_app():
    folders = {path.parent.name for path in TESTS.glob("*/*.py")}
    strays = sorted(name for name in folders if name not in TESTED_FOLDERS or not (ROOT / name).is_dir())
    assert strays == [], f"tests/<folder>/ must be one of {TESTED_FOLDERS}, a folder of the project: {strays}"


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (``test_*``) that ``path`` imports, by name: ``from .test_x import y``, ``from
    tests.app.test_x import y``, ``from tests.app import test_x`` and ``import tests.app.test_x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[-1].startswith("test_")]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if module.split(".")[-1].startswith("test_"):
                found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names if alias.name.startswith("test_")]
    return found


def test_no_test_module_imports_another():
    """Shared helpers come from tests/helpers.py (or live.py, properties.py, readme_session.py) and fixtures."""
    imports = {
        str(path.relative_to(ROOT)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := imported_test_modules(path))
    }
    assert imports == {}


def test_the_check_sees_a_test_module_imported(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from .test_api import post\nfrom tests.ml import test_registry\nimport tests.core.test_errors\n"
        "from tests.helpers import post_json\n\ndef f():\n    from ..estimations.test_store import new_document\n"
    )
    assert imported_test_modules(sample) == [
        ".test_api",
        "tests.ml.test_registry",
        "tests.core.test_errors",
        "..estimations.test_store",
    ]


def test_no_test_module_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n for p in TESTS.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these along their classes or themes: {long}"


if __name__ == "__main__":  # python tests/test_layout.py: the app-to-app import graph, checked
    print("layers, bottom first: " + " <- ".join(LAYERS))
    graph = import_graph()
    for (app, other), files in sorted(graph.items(), key=lambda edge: (LAYERS.index(edge[0][0]), edge[0][1])):
        direction = "down" if LAYERS.index(other) < LAYERS.index(app) else "UP (not allowed)"
        print(f"  {app} -> {other}: {len(files)} file{'s' * (len(files) != 1)}, {direction}")
    upward = [edge for edge in graph if LAYERS.index(edge[1]) > LAYERS.index(edge[0])]
    print("every import runs down the layers" if not upward else f"{len(upward)} arrow(s) run up: see above")
    raise SystemExit(1 if upward else 0)
