"""The models package as a whole: its imports form no cycle, reach no orchestration or tracking
library, and no module (tests included) imports a private name of another."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
PACKAGE = "fairdistill.models"


def module_name(path: Path) -> str:
    parts = path.relative_to(MODELS).with_suffix("").parts
    return ".".join((PACKAGE, *parts)).removesuffix(".__init__")


SOURCES = {module_name(path): path for path in sorted(MODELS.rglob("*.py"))}


def imported_modules(tree: ast.Module) -> Iterator[str]:
    """Every module an import statement of ``tree`` names, at any depth (lazy ones too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                # ``from package import submodule`` depends on the submodule.
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in SOURCES else node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def package_imports() -> dict[str, set[str]]:
    return {
        name: set(imported_modules(ast.parse(path.read_text(encoding="utf-8"))))
        for name, path in SOURCES.items()
    }


def test_models_imports_form_no_cycle() -> None:
    graph = package_imports()
    inside = {name: imported & set(graph) for name, imported in graph.items()}
    try:
        TopologicalSorter(inside).prepare()
    except CycleError as error:
        pytest.fail(f"import cycle in models/: {error.args[1]}")


@pytest.mark.parametrize("library", ["importlib", "prefect", "mlflow"])
def test_models_never_import(library: str) -> None:
    # importlib is how a registry hides a cycle from the import statements checked above.
    offenders = [
        name
        for name, imported in package_imports().items()
        if any(module.split(".")[0] == library for module in imported)
    ]
    assert offenders == []


def private_uses(path: Path) -> Iterator[str]:
    """Private names of ``fairdistill.models`` modules that the file at ``path`` imports or
    reads off an imported module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            for alias in node.names:
                if alias.name.startswith("_"):
                    yield f"{path.relative_to(REPO)}:{node.lineno} {node.module}.{alias.name}"
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            yield f"{path.relative_to(REPO)}:{node.lineno} {node.value.id}.{node.attr}"


def test_no_private_name_of_models_is_used_outside_its_module() -> None:
    files = [*MODELS.rglob("*.py"), *(REPO / "tests").rglob("*.py")]
    assert [use for path in sorted(files) for use in private_uses(path)] == []
