"""report.html in a real headless browser (Debian's chromium; `make browser` installs it where
apt is usable, and CI runs that): it loads without console messages, its screenshot is not
blank, and every figure it inlines is a PNG that decodes. `kat report` writes it again."""

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from training.run_dir import RunDir

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no chromium: `make browser` installs "
                                   "Debian's chromium where apt is usable (root or passwordless sudo)")


def _browse(page, tmp_path):
    """(console lines, screenshot) of `page` in headless chromium."""
    shot = tmp_path / f"{page.stem}.png"
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}",
                           "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return console, Image.open(shot).convert("L")


def _inlined_pngs(text):
    return [Image.open(io.BytesIO(base64.b64decode(data)))
            for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


@needs_browser
def test_the_browser_check_sees_a_console_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><p>x</p><script>console.error("broken page")</script>')
    console, _ = _browse(page, tmp_path)
    assert any("broken page" in line for line in console)


@needs_browser
def test_the_report_loads_cleanly_with_every_figure(finished_run, tmp_path):
    page = RunDir(finished_run["run"]).report
    console, shot = _browse(page, tmp_path)
    assert console == []
    pixels = np.asarray(shot, np.float32)
    assert pixels.std() > 20 and (pixels < 200).mean() > 0.02  # text and figures, not a blank page
    text = page.read_text()
    figures = _inlined_pngs(text)
    assert len(figures) == text.count("<img ") == 5  # curves, confusion, calibration, mistakes, Grad-CAM
    for figure in figures:
        figure.load()  # decodes whole
        assert min(figure.size) > 100
    assert "http://" not in text and "https://" not in text  # nothing from the network


def test_the_page_has_the_run_s_figures_and_kat_report_writes_it_again(finished_run, cli):
    page = RunDir(finished_run["run"]).report
    text = page.read_text()
    for heading in ("Test", "Per class, weakest F1 first", "Calibration", "The worst mistakes",
                    "Grad-CAM", "Config", "majority-class baseline accuracy", "<h3>mistakes.csv</h3>"):
        assert heading in text
    for name in finished_run["class_names"]:
        assert f"<td>{name}</td>" in text
    page.unlink()
    result = cli("report", "--run", str(finished_run["run"]))
    assert result.returncode == 0 and result.stdout.strip() == str(page)
    assert page.read_text() == text


def test_kat_report_on_a_run_from_before_the_diagnostics_draws_them(finished_run, cli, tmp_path):
    shutil.copytree(finished_run["run"], tmp_path / "old_run")
    old = RunDir(tmp_path / "old_run")
    metrics = json.loads(old.metrics.read_text())
    for key in ("per_class", "macro_avg", "weighted_avg", "balanced_accuracy", "calibration", "mistakes"):
        del metrics[key]
    old.metrics.write_text(json.dumps(metrics))
    figures = (old.report, old.mistakes_csv, old.mistakes_png, old.calibration, old.gradcam)
    for path in figures:
        path.unlink()
    result = cli("report", "--run", str(old.path))
    assert result.returncode == 0, result.stderr
    for path in figures:
        assert path.stat().st_size > 0
    assert "Per class, weakest F1 first" in old.report.read_text()
    assert "per_class" not in json.loads(old.metrics.read_text())  # left as it was
    not_a_run = cli("report", "--run", str(tmp_path))
    assert not_a_run.returncode == 2 and "is not a finished run" in not_a_run.stderr
