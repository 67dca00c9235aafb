"""The house rules of the layout, checked on the code's own imports.

Dependencies point down only: data ← models ← tasks' shared services ← the stage tasks ←
flows ← the command line; benchmarks stand above everything. ``models/`` is plain
PyTorch/NumPy/polars (no orchestration, no tracking, no import registry), no module is
part of an import cycle, no file (tests included) uses another module's private names, and
``tasks/`` holds the stages at its top and nothing else. Every import counts, those inside
functions too: a lazy import that points up is still an upward dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = {"fairdistill.data": "data", "fairdistill.models": "models"}
PACKAGE_FOLDERS |= {"fairdistill.tasks": "tasks", "fairdistill.flows": "flows"}
STAGES = {"validate", "prepare", "train_teacher", "distill_student", "generate", "evaluate"}
STAGES |= {"publish"}
# importlib is how a registry hides a cycle from the import statements checked here.
NOT_IN_MODELS = ("prefect", "mlflow", "prefect_dask", "dask", "distributed", "importlib")


def module_name(path: Path) -> str:
    relative = path.relative_to(REPO_ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] == "benchmarks":
        return ".".join(parts)
    return ".".join(["fairdistill", *parts])


def source_files() -> Iterator[Path]:
    for folder in [*PACKAGE_FOLDERS.values(), "benchmarks"]:
        yield from sorted((REPO_ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: the house imports absolutely"
            found.add(node.module or "")
            # "from package import module" names a module as well as a package attribute.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer(module: str) -> tuple[int, str] | None:
    """The layer a first-party module stands on (higher imports lower), None if not ours."""
    if module.startswith("benchmarks"):
        return 6, "benchmarks"
    if module.startswith("fairdistill.data.build_"):
        # The scripts that rebuild the bundled files from the raw ones use the whole product.
        return 6, "dataset build scripts"
    if module == "fairdistill.flows.cli":
        return 5, "the command line"
    for prefix, rank, name in (
        ("fairdistill.flows", 4, "flows"),
        ("fairdistill.tasks.services", 2, "tasks' services"),
        ("fairdistill.tasks", 3, "stage tasks"),
        ("fairdistill.models", 1, "models"),
        ("fairdistill.data", 0, "data"),
    ):
        if module == prefix or module.startswith(f"{prefix}."):
            return rank, name
    return None


def known_modules() -> set[str]:
    return {module_name(path) for path in source_files()}


def import_graph() -> dict[str, set[str]]:
    """Module → the first-party modules it imports; ``from package import module`` counts
    as importing the module alone (the package's ``__init__`` merely runs first)."""
    modules = known_modules()
    graph = {}
    for path in source_files():
        imported = {name for name in imported_modules(path) if name in modules}
        graph[module_name(path)] = {
            name for name in imported if not any(other.startswith(f"{name}.") for other in imported)
        }
    return graph


def upward_imports(module: str, imported: set[str]) -> list[str]:
    """The imports of ``module`` that point to a higher layer than its own."""
    own = layer(module)
    assert own is not None, module
    found = []
    for name in sorted(imported):
        other = layer(name)
        if other is not None and other[0] > own[0]:
            found.append(f"{module} ({own[1]}) imports {name} ({other[1]})")
    return found


def test_no_import_points_up_a_layer() -> None:
    upward = [
        line
        for path in source_files()
        for line in upward_imports(module_name(path), imported_modules(path))
    ]
    assert upward == [], "\n".join(upward)


def test_an_upward_import_is_caught() -> None:
    """The rule can fail: a models module importing a flow, or a service a stage."""
    assert upward_imports("fairdistill.models.codec", {"fairdistill.flows.regenerate"})
    assert upward_imports("fairdistill.tasks.services.registry", {"fairdistill.tasks.generate"})
    assert upward_imports("fairdistill.flows.regenerate", {"fairdistill.flows.cli"})
    assert not upward_imports("fairdistill.flows.cli", {"fairdistill.models.config"})


def test_models_import_no_orchestration_tracking_or_registry() -> None:
    offending = [
        f"{path.relative_to(REPO_ROOT)} imports {name}"
        for path in (REPO_ROOT / "models").rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in NOT_IN_MODELS
    ]
    assert offending == [], "\n".join(offending)


def test_no_module_is_part_of_an_import_cycle() -> None:
    graph = import_graph()
    cycles = [component for component in strongly_connected(graph) if len(component) > 1]
    assert cycles == [], cycles


def private_uses(path: Path) -> Iterator[str]:
    """Private names of first-party modules that the file at ``path`` imports, or reads or
    patches off an imported module (``module._name``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and layer(node.module or "") is not None:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield f"{shown(path)}:{node.lineno} {node.module}.{alias.name}"
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            yield f"{shown(path)}:{node.lineno} {node.value.id}.{node.attr}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in modules
            and isinstance(node.args[1], ast.Constant)
            and str(node.args[1].value).startswith("_")
        ):
            yield f"{shown(path)}:{node.lineno} patches {node.args[1].value}"


def shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else path.name


def test_a_private_use_is_caught(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from fairdistill.flows import server_warmup\n"
        "from fairdistill.models.codec import _hidden\n"
        "server_warmup._launch(1)\n"
        "monkeypatch.setattr(server_warmup, '_answers', None)\n",
        encoding="utf-8",
    )
    assert len(list(private_uses(probe))) == 3


def test_no_file_uses_another_modules_private_names() -> None:
    files = [*source_files(), *sorted((REPO_ROOT / "tests").rglob("*.py"))]
    assert [use for path in files for use in private_uses(path)] == []


def test_the_top_of_tasks_holds_the_stages_and_their_services_only() -> None:
    top = {path.stem for path in (REPO_ROOT / "tasks").glob("*.py")} - {"__init__"}
    folders = {path.name for path in (REPO_ROOT / "tasks").iterdir() if path.is_dir()}
    assert top == STAGES
    assert folders - {"__pycache__"} == {"services"}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_task_imports_no_other_stage(stage: str) -> None:
    imported = imported_modules(REPO_ROOT / "tasks" / f"{stage}.py")
    others = {f"fairdistill.tasks.{name}" for name in STAGES - {stage}}
    assert imported & others == set()


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of a directed graph."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = lowest[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                lowest[node] = min(lowest[node], lowest[successor])
            elif successor in on_stack:
                lowest[node] = min(lowest[node], index[successor])
        if lowest[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return components
