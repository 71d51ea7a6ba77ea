"""The import contracts of pyproject.toml ([tool.importlinter]): stages import one way, and
connectors see only the connector contract and core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.exists():
        pytest.fail(f"{lint_imports} not found: install the dev extra (pip install -e '.[dev]')")
    proc = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          encoding="utf-8", timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "0 broken" in output, output
