from __future__ import annotations

import subprocess
import sys

import pytest
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


@pytest.mark.slow
def test_demo_end_to_end(tmp_path) -> None:
    """The demo pipeline on 2 images per split and a few iterations (the real one trains longer)."""
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--iterations", "4", "--limit", "2"])
    assert result.exception is None and result.exit_code == 0, result.output
    text = (tmp_path / "ct" / "report.md").read_text()
    assert "| rat | ct_window |" in text and "| redcnn | ct_window |" in text and "| input (LQ) |" in text
    assert "## Verdict" in text and list((tmp_path / "ct" / "figures").glob("*.png"))
    assert list((tmp_path / "ct" / "restored").glob("*.dcm"))
    assert "[ct](ct/report.md)" in (tmp_path / "index.md").read_text()


def test_demo_rejects_unknown_task(tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--task", "mri", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: task must be one of"), result.output
    assert not (tmp_path / "demo").exists()
