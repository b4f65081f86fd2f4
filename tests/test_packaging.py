"""The wheel carries the committed results, so the chapters find them wherever the package is installed."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600,
                          cwd=build)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(out.glob("concrete_ref-*.whl"))


def test_the_wheel_holds_every_committed_result(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    committed = sorted((ROOT / "data" / "results").glob("*.json")) + sorted((ROOT / "data" / "results").glob("*.md"))
    assert committed
    missing = [p.name for p in committed if f"concrete_ref/_results/{p.name}" not in names]
    assert not missing, missing
    assert not any(n.startswith("concrete_ref/_results/") and "checkpoints" in n for n in names)


def test_an_installed_package_reads_its_packaged_results(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=600, capture_output=True)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from concrete_ref.experiments import results as R; "
             "d = R.committed_results_dir(); print(d); print(len(R.load_results(preset='book')))")
    out = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)  # outside the repository
    assert out.returncode == 0, out.stderr[-3000:]
    folder, count = out.stdout.split()
    assert folder.startswith(str(target)) and folder.endswith("_results")
    from concrete_ref.experiments import results as R

    # the same book results as the repository's data/results (other presets' files are there too)
    assert int(count) == len(R.load_results(ROOT / "data" / "results", preset="book")) > 0
