"""The layering of docs/architecture.md holds: dependencies run one way (the import-linter
contract in pyproject.toml), no cycle between packages, no private function used outside its
package, and no import tucked inside a function to dodge a cycle."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp
import networkx
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "marketplace"


def package_of(module: str) -> str:
    """``marketplace.referrals.chains`` → ``marketplace.referrals``; a top-level module is its own."""
    return ".".join(module.split(".")[:2])


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_the_layer_contract_is_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_no_import_cycle_between_packages():
    graph = grimp.build_graph("marketplace")
    packages = networkx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if package_of(module) != package_of(imported) and package_of(module) != "marketplace":
                packages.add_edge(package_of(module), package_of(imported))
    assert list(networkx.simple_cycles(packages)) == []


def _marketplace_aliases(tree: ast.Module) -> dict[str, str]:
    """Local names bound to marketplace modules by the module's imports, with the module's name."""
    aliases = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("marketplace"):
            for name in node.names:
                candidate = f"{node.module}.{name.name}"
                if candidate in SOURCES:
                    aliases[name.asname or name.name] = candidate
    return aliases


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_private_names_stay_in_their_package(module):
    tree = ast.parse(SOURCES[module].read_text())
    aliases = _marketplace_aliases(tree)
    borrowed = []
    for node in ast.walk(tree):
        imports_marketplace = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("marketplace")
        if imports_marketplace and package_of(node.module) != package_of(module):
            borrowed += [f"{node.module}.{n.name}" for n in node.names if n.name.startswith("_")]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_"):
            owner = aliases.get(node.value.id)
            if owner and package_of(owner) != package_of(module) and not node.attr.startswith("__"):
                borrowed.append(f"{owner}.{node.attr}")
    assert borrowed == []


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_sit_at_the_top_of_the_module(module):
    """An import inside a function hides a dependency (and usually a cycle being dodged)."""
    tree = ast.parse(SOURCES[module].read_text())
    nested = [
        f"line {node.lineno}"
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert nested == []


def _lint_copy_of_the_package(tmp_path: Path, edit) -> int:
    """Run the contract on a copy of the package changed by ``edit``, in its own process."""
    copy = tmp_path / "marketplace"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    edit(copy)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    check = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    return subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
    ).returncode


def test_the_contract_sees_a_new_upward_import(tmp_path):
    """A domain importing a workflow breaks the contract: the check is not vacuous."""

    def domain_imports_a_workflow(copy: Path) -> None:
        chains = copy / "referrals" / "chains.py"
        chains.write_text("from marketplace.workflows import settlement  # noqa\n" + chains.read_text())

    assert _lint_copy_of_the_package(tmp_path / "unchanged", lambda copy: None) == 0
    assert _lint_copy_of_the_package(tmp_path / "changed", domain_imports_a_workflow) == 1


HANDLER_MODULES = sorted(m for m in SOURCES if m.split(".")[:2] in (["marketplace", "web"], ["marketplace", "api"]))


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handlers_never_commit(module):
    """One unit of work per request: the response commits it (``db.Database.init_app``)."""
    tree = ast.parse(SOURCES[module].read_text())
    commits = [
        f"line {node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    ]
    assert commits == []
