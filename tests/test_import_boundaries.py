"""Layer rules: the device side runs without torch, and imports point drsn_edge -> export -> runtime.

The torch checks run in a fresh interpreter where ``import torch`` fails, then import every
module of the package under test. The direction and cycle checks parse every module's imports
(ast), lazy ones inside functions included, so an import that only runs on some path is caught.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_BLOCK_TORCH = """
import importlib, pkgutil, sys
for blocked in {blocked!r}:
    sys.modules[blocked] = None  # any `import torch` (...) now raises ImportError
failed = []
for pkg_name in {packages!r}:
    pkg = importlib.import_module(pkg_name)
    names = [pkg_name] + [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg_name + ".")]
    for name in names:
        if name in {skip!r}:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def _run(
    packages: list[str], skip: tuple[str, ...] = (), blocked: tuple[str, ...] = ("torch",)
) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(_BLOCK_TORCH.format(packages=packages, skip=skip, blocked=blocked))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_runtime_never_imports_torch() -> None:
    res = _run(["runtime"])
    assert res.returncode == 0, f"runtime modules that need torch:\n{res.stdout}{res.stderr}"


#: what a device installs without: torch, and the host commands' progress bars and tables
HOST_ONLY = ("torch", "tqdm", "rich", "matplotlib")


def test_runtime_and_device_commands_need_no_host_only_package() -> None:
    """tqdm and rich are extras (train, demo): the daemon and its benchmarks run without them."""
    res = _run(["runtime"], blocked=HOST_ONLY)
    assert res.returncode == 0, f"runtime modules that need a host-only package:\n{res.stdout}{res.stderr}"
    for argv in (["run", "--help"], ["validate-config", "--help"], ["bench", "daemon", "--help"],
                 ["bench", "backends", "--help"], ["build-engine", "--help"]):
        code = (f"import sys\nfor m in {HOST_ONLY!r}: sys.modules[m] = None\n"
                f"from drsn_edge.cli import main; raise SystemExit(main({argv!r}))")
        res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, f"drsn-edge {' '.join(argv)} needs a host-only package:\n{res.stderr}"


def test_export_needs_torch_only_for_the_torch_step() -> None:
    res = _run(["export"], skip=("export.onnx_export",))
    assert res.returncode == 0, f"export modules that need torch:\n{res.stdout}{res.stderr}"


def test_cli_and_device_commands_load_without_torch() -> None:
    res = _run(["drsn_edge.commands"])
    assert res.returncode == 0, f"command modules importing torch at module level:\n{res.stdout}{res.stderr}"
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['torch'] = None\n"
            "from drsn_edge.cli import main; raise SystemExit(main(['validate-config', '--help']))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "invalid choice" in res.stderr:
        pytest.fail("validate-config is not registered")
    assert res.returncode == 0, res.stderr


def test_no_torch_import_statement_in_runtime_sources() -> None:
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "runtime").rglob("*.py")
        if any(
            line.lstrip().startswith(("import torch", "from torch")) for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []


# --------------------------------------------------------------------------- layer directions (ast)

#: package -> top-level names its modules must never import, at module level or inside functions
FORBIDDEN = {
    "runtime": {"export", "drsn_edge", "torch"},
    "export": {"drsn_edge"},
}
PACKAGES = ("drsn_edge", "export", "runtime")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path, *, module_level: bool) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import of ``path``; relative imports resolved.

    With ``module_level`` only imports that run when the module is imported count: statements
    at the top (also inside top-level if/try), not those inside functions or TYPE_CHECKING.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child) and module_level:
                continue
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import) and (inner or not module_level):
                found.extend((alias.name, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and (inner or not module_level):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append((base, child.lineno))
                found.extend((f"{base}.{alias.name}", child.lineno) for alias in child.names)
            visit(child, inner)

    visit(tree, True)
    return found


def test_imports_point_one_way() -> None:
    """drsn_edge -> export -> runtime: a Jetson installs runtime's dependencies only, and export
    must stay usable without the training package above it."""
    offenders = []
    for name, path in _sources().items():
        banned = FORBIDDEN.get(name.split(".")[0], set())
        for target, line in _imports(name, path, module_level=False):
            if target.split(".")[0] in banned:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert sorted(set(offenders)) == []


def test_no_import_cycle_between_modules() -> None:
    """Module-level imports form no cycle (a package importing its own submodules aside)."""
    sources = _sources()
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        targets = {t for t, _ in _imports(name, path, module_level=True) if t in sources and t != name}
        # a package's __init__ importing its submodules is how packages re-export, not a cycle
        graph[name] = {t for t in targets if not t.startswith(name + ".") and not name.startswith(t + ".")}
    cycles = _cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def test_the_checker_sees_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """The rules above are only as good as the import parser: prove it on a hand-written module."""
    path = tmp_path / "mod.py"
    path.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from ..up import thing\n"
        "if TYPE_CHECKING:\n    import torch\n"
        "def f():\n    import export.fp16\n"
    )
    top = {t for t, _ in _imports("runtime.pkg.mod", path, module_level=True)}
    everywhere = {t for t, _ in _imports("runtime.pkg.mod", path, module_level=False)}
    assert {"runtime.pkg.sibling", "runtime.up.thing"} <= top
    assert "torch" not in top and "export.fp16" not in top
    assert {"torch", "export.fp16"} <= everywhere
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
