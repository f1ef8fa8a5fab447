from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from ratmir import __version__
from ratmir.cli import app


def test_version_and_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"ratmir {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output


def test_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "ratmir", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"ratmir {__version__}"


def test_demo_writes_report(tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "input.png", "output.png", "regions.png"):
        assert (tmp_path / name).is_file()
    assert "randomly initialised" in (tmp_path / "report.md").read_text()


def test_demo_rejects_unknown_task(tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--task", "mri", "--out", str(tmp_path)])
    assert result.exit_code != 0
