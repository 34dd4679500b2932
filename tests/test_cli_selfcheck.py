import json
import subprocess
import sys
from pathlib import Path

import pytest

from terminal.cli import main
from terminal.commands import selfcheck_command
from terminal.commands.selfcheck_command import (
    REQUIRED_PACKAGES,
    CheckFailed,
    CheckResult,
    run_checks,
)


@pytest.fixture(autouse=True)
def quick_forecasting_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs skip the seconds-long torch and worker checks (the subprocess test
    below runs them)."""
    for name in ("_check_torch_model", "_check_worker"):
        monkeypatch.setattr(selfcheck_command, name, lambda _folder: "checked elsewhere")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    status = main(["selfcheck", "--json", *argv])
    return status, json.loads(capsys.readouterr().out)


def test_selfcheck_passes_without_loading_qt() -> None:
    # The only run of the forecasting checks (torch, a spawned worker): they take seconds.
    code = (
        "import sys\n"
        "from terminal.cli import main\n"
        "status = main(['selfcheck'])\n"
        "loaded = [m for m in ('PySide6', 'pyqtgraph', 'qasync') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith("ok ") for line in lines[:-1]), lines
    assert lines[-1] == f"selfcheck: all {len(lines) - 1} checks passed"


def test_json_lists_every_check_with_its_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys)
    assert status == 0
    assert set(report) == {"checks", "ok"} and report["ok"] is True
    assert all(set(check) == {"name", "ok", "detail"} and check["ok"] is True
               for check in report["checks"])
    names = [check["name"] for check in report["checks"]]
    assert names[0] == "python"
    assert {f"import {name}" for name in REQUIRED_PACKAGES} <= set(names)
    assert {"resources", "store", "simulated market", "importers"} <= set(names)
    assert "qt" not in names


def test_a_bundle_without_its_resources_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # What a frozen bundle built without `resources/` looks like to terminal.resources.
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert main(["selfcheck"]) == 1
    lines = capsys.readouterr().out.splitlines()
    failed = [line for line in lines if line.startswith("FAILED")]
    assert len(failed) == 1
    assert failed[0].startswith("FAILED  resources: FileNotFoundError: resource icons/app.svg")
    assert lines[-1] == f"selfcheck: 1 of {len(lines) - 1} checks FAILED"

    status, report = run_json(capsys)
    assert status == 1 and report["ok"] is False
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["resources"]


def test_one_failing_check_does_not_stop_the_others(tmp_path: Path) -> None:
    def broken(_folder: Path) -> str:
        raise RuntimeError("boom")

    def wrong(_folder: Path) -> str:
        raise CheckFailed("3 candles missing")

    def fine(folder: Path) -> str:
        assert folder.is_dir() and not any(folder.iterdir())
        return "all good"

    results = run_checks([("a", broken), ("b", wrong), ("c", fine)], tmp_path)
    assert results == [CheckResult("a", False, "RuntimeError: boom"),
                       CheckResult("b", False, "3 candles missing"),
                       CheckResult("c", True, "all good")]


@pytest.mark.qt
def test_gui_checks_render_the_window(qapp, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys, "--gui")
    assert status == 0, report
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["qt"]["detail"].endswith("platform offscreen")
    assert checks["app icon"]["ok"] is True
    assert checks["main window"]["detail"].startswith("rendered the window to a 1280x800 PNG")
