"""The house's floors: `tokens/` is the ground floor and imports nothing from
`accounts/` or `config/`; no two modules of `tokens/` import each other (the
services/selectors cycle stays broken); `bench/` imports nothing from `config/`
(it runs the service by its WSGI path, it does not reach into it)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports in functions too),
    with relative imports resolved against the file's package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
                found.update([module] if node.module else [f"{base}.{alias.name}" for alias in node.names])
            else:
                found.add(node.module or "")
    return found


def python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", python_files("tokens"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tokens_module_imports_nothing_from_accounts_or_config(path):
    upstairs = {name for name in imports_of(path) if name.split(".")[0] in {"accounts", "config"}}
    assert upstairs == set()


@pytest.mark.parametrize("path", python_files("bench"), ids=lambda p: str(p.relative_to(ROOT)))
def test_bench_module_imports_nothing_from_config(path):
    assert {name for name in imports_of(path) if name.split(".")[0] == "config"} == set()


def test_tokens_modules_form_no_import_cycle():
    graph = {}
    for path in python_files("tokens"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {dep for dep in imports_of(path) if dep.startswith("tokens.") and dep != name}
    cycles = []

    def visit(node, trail):
        for dep in sorted(graph.get(node, ())):
            if dep in trail:
                cycles.append([*trail[trail.index(dep) :], dep])
            elif dep in graph and len(trail) < len(graph):
                visit(dep, [*trail, dep])

    for start in graph:
        visit(start, [start])
    assert cycles == []
