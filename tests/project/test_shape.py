"""The code's shape holds: imports point one way between packages, no module imports itself
back through others, and modules stay a size a person can hold in their head
(docs/architecture.md)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "core", "accounts", "partyhub", "streams", "generation", "offline")
# The only imports from an app into the project: the aliases through which the commands
# deployments run (`celery -A partyhub`, `daphne partyhub.asgi:application`) find the Celery app
# and the ASGI application. Nothing imports them.
ENTRY_ALIASES = {"partyhub.celery", "partyhub.asgi"}
MAX_LINES = 400


def modules():
    """{module name: path} for every module of the project's packages, migrations aside."""
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path, known):
    """The project modules `path` imports, wherever in it (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known}


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def cycle_in(edges):
    """One cycle of the directed graph as a list of nodes, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_packages_import_each_other_one_way(graph):
    between = {}
    for module, targets in graph.items():
        if module in ENTRY_ALIASES:
            continue
        for target in targets:
            source, dest = module.split(".")[0], target.split(".")[0]
            if source != dest:
                between.setdefault(source, set()).add(dest)
    assert cycle_in(between) is None
    assert between.get("generation", set()) <= {"offline"}  # the engine knows no web code
    assert between.get("core", set()) <= {"generation"}


def test_no_module_imports_itself_back(graph):
    # A package's __init__ importing its own modules (partyhub.models) is how Django finds the
    # models, not a cycle; every other import path must not lead back.
    edges = {
        module: {t for t in targets if not module.startswith(t + ".")}
        for module, targets in graph.items()
    }
    assert cycle_in(edges) is None


def test_modules_stay_small_or_say_why():
    """Past about 400 lines a module's opening comment says why it is one piece."""
    long = []
    for path in list(modules().values()) + list((REPO / "tests").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MAX_LINES and "one piece" not in text[:3000]:
            long.append(str(path.relative_to(REPO)))
    assert long == []
