"""The device side must run without torch: a Jetson installs drsn-edge[trt] and nothing else.

Each check runs in a fresh interpreter where ``import torch`` fails, then imports every module
of the package under test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_BLOCK_TORCH = """
import importlib, pkgutil, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
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


def _run(packages: list[str], skip: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(_BLOCK_TORCH.format(packages=packages, skip=skip))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_runtime_never_imports_torch() -> None:
    res = _run(["runtime"])
    assert res.returncode == 0, f"runtime modules that need torch:\n{res.stdout}{res.stderr}"


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
