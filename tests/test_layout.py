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


if __name__ == "__main__":  # python tests/test_layout.py: the app-to-app import graph, files per arrow
    for (app, other), files in sorted(import_graph().items()):
        print(f"{app} -> {other}: {len(files)} files")
