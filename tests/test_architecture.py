"""The rules of docs/architecture.md that import-linter cannot check, read from the source with ``ast``.

import-linter (run by .ci/run) enforces the layers and forbids cycles; these tests forbid what it cannot see: one
module importing another module's ``_private`` name, and bertwise imports hidden inside functions where they defer
nothing heavy (such an import usually hides a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bertwise"
# Libraries slow enough to import that a function may defer them (and the bertwise modules that import them).
HEAVY = {
    "torch", "transformers", "sklearn", "scipy", "onnx", "onnxruntime", "fastapi", "uvicorn", "starlette",
    "matplotlib", "pandas", "pyarrow", "datasets", "safetensors", "tokenizers", "sentence_transformers", "rich",
    "typer", "tqdm", "psutil", "numpy", "mlflow",
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(path: Path) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement of the file and whether it sits inside a function."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from walk(child, inside)

    yield from walk(_tree(path), False)


def _is_type_checking_block(path: Path, statement: ast.AST) -> bool:
    return id(statement) in _type_checking_statements(path)


@cache
def _type_checking_statements(path: Path) -> frozenset[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` in the file (imports there run only for the type checker)."""
    return frozenset(
        id(inner)
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    )


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_imports_another_modules_private_name() -> None:
    modules = _modules()
    offences = []
    for name, path in modules.items():
        for statement, _ in _imports(path):
            if not isinstance(statement, ast.ImportFrom) or not (statement.module or "").startswith("bertwise"):
                continue
            source = statement.module or ""
            for alias in statement.names:
                imported_module = f"{source}.{alias.name}"
                if _private(alias.name) and imported_module not in modules and source != name:
                    offences.append(f"{name} (line {statement.lineno}) imports {source}.{alias.name}")
    assert offences == []


@cache
def _heavy(module: str) -> bool:
    """Whether importing ``module`` (a bertwise module) loads a heavy library at module level: directly, through its
    packages' ``__init__`` (which run first), or through the bertwise modules these import at module level."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        path = _modules().get(current)
        if path is None:
            continue
        parent = current.rpartition(".")[0]
        if parent:
            pending.append(parent)
        for statement, in_function in _imports(path):
            if in_function or _is_type_checking_block(path, statement):
                continue
            for target in _targets(statement):
                if target.split(".")[0] in HEAVY:
                    return True
                if target.startswith("bertwise"):
                    pending.append(target)
    return False


def _targets(statement: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    source = statement.module or ""
    modules = _modules()
    return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in statement.names]


def test_bertwise_imports_inside_functions_only_defer_heavy_libraries() -> None:
    """An import inside a function must be worth deferring: the module it loads pulls in torch, transformers,
    scikit-learn and the like. Otherwise it belongs at the top of the file (and if that makes a cycle, the layering
    is wrong, not the import's place)."""
    offences = []
    for name, path in _modules().items():
        for statement, in_function in _imports(path):
            if not in_function:
                continue
            for target in _targets(statement):
                if target.startswith("bertwise") and not _heavy(target):
                    offences.append(f"{name} (line {statement.lineno}) imports {target} inside a function")
    assert offences == []


def test_the_heavy_import_check_tells_light_modules_from_heavy_ones() -> None:
    assert not _heavy("bertwise.util.atomic")  # os, re and secrets only
    assert _heavy("bertwise.strategies.base")  # scikit-learn at module level
    assert _heavy("bertwise.strategies.probe")  # scikit-learn through strategies.base
