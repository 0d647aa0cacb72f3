"""The package's layout (DESIGN.md): imports flow one way, no module imports itself back, modules fit in one reading.

The import graph is read from the source with ``ast`` (nothing is imported): every ``import`` and ``from ... import``
of a ``tinystories`` module, at module level or inside a function, is an edge.
"""

import ast
import os

import pytest

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tinystories")

ENTRY, PIPELINE, SHARED = "entry", "pipeline", "shared"
RANK = {ENTRY: 0, PIPELINE: 1, SHARED: 2}
PIPELINES = ("training", "synth", "evaluation", "serving", "hub")
#: Top-level modules by layer; a subpackage takes the layer of its first name.
ENTRY_MODULES = ("cli", "__main__", "demo", "train", "reproduce")
SHARED_MODULES = (
    "errors",
    "recipes",
    "tokenization",
    "story_formats",
    "models",
    "llm",
    "modeling",
    "resources",
    "run_lock",
    "logging_setup",
)
#: Public faces of a pipeline at the top level (kept for users), and evaluate's wrapper of the judge.
FACES = {"builder": "synth", "metrics.gpt_eval": "evaluation"}
MAX_LINES = 500


def module_files() -> dict[str, str]:
    """``{dotted module name: path}`` of every module of the package (``pkg.__init__`` named ``pkg``)."""
    modules = {}
    for folder, _, names in os.walk(PACKAGE_DIR):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path[:-3], os.path.dirname(PACKAGE_DIR)).replace(os.sep, ".")
                modules[dotted.removesuffix(".__init__")] = path
    return modules


def imported_modules(name: str, path: str, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (``from .x import y`` counts ``x``, and ``x.y`` if that is a module)."""
    is_package = path.endswith("__init__.py")
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name and not name.startswith(m + ".")}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def component(module: str) -> str:
    """What a module belongs to: a pipeline's name, ``entry``, or ``shared``."""
    inside = module.removeprefix("tinystories").lstrip(".")
    for face, pipeline in FACES.items():
        if inside == face or inside.startswith(face + "."):
            return pipeline
    first = inside.split(".")[0]
    if first in PIPELINES:
        return first
    if first in ENTRY_MODULES:
        return ENTRY
    if first in SHARED_MODULES or inside in ("", "metrics"):
        return SHARED
    raise AssertionError(f"{module} belongs to no layer: add it to DESIGN.md's layout and to this test")


def layer(module: str) -> str:
    kind = component(module)
    return kind if kind in (ENTRY, SHARED) else PIPELINE


def test_every_module_has_a_layer():
    for module in import_graph():
        assert layer(module) in RANK


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_flow_down_and_pipelines_never_import_one_another():
    bad = []
    for module, targets in import_graph().items():
        for target in targets:
            if RANK[layer(target)] < RANK[layer(module)]:
                bad.append(f"{module} ({layer(module)}) imports {target} ({layer(target)}): upward")
            elif layer(module) == layer(target) == PIPELINE and component(module) != component(target):
                bad.append(f"{module} imports {target}: one pipeline imports another")
    assert not bad, "\n".join(sorted(bad))


def test_the_graph_sees_real_imports():
    """The checks above would pass on an empty graph: pin edges that exist."""
    graph = import_graph()
    assert "tinystories.llm" in graph["tinystories.synth.pipeline"]
    assert "tinystories.evaluation.judge" in graph["tinystories.metrics.gpt_eval.gpt_eval"]
    assert "tinystories.hub" in graph["tinystories.cli"] and "tinystories.synth" in graph["tinystories.cli"]
    assert layer("tinystories.cli") == ENTRY and component("tinystories.builder") == "synth"


@pytest.mark.parametrize("module", sorted(module_files()))
def test_a_module_fits_in_one_reading(module):
    with open(module_files()[module], encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by concern"
