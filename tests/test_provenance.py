"""Provenance names the package's changed files whole (the first line of `git status --porcelain` starts
with a space when the index is clean)."""

import subprocess

from concrete_ref.experiments import grid, provenance


def test_dirty_files_are_named_whole(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "concrete_ref").mkdir()
    for name in ("a.py", "b.py"):
        (tmp_path / "concrete_ref" / name).write_text("x = 1\n")
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    for name in ("a.py", "b.py"):
        (tmp_path / "concrete_ref" / name).write_text("x = 2\n")  # modified in the work tree, not staged
    monkeypatch.setattr(provenance, "repo_root", lambda: tmp_path)
    provenance.code_state.cache_clear()  # read once per process: read again for this repository
    provenance.dirty_digest.cache_clear()
    try:
        rec = provenance.provenance("cmd")
        dirty = grid.dirty_package()
    finally:
        provenance.code_state.cache_clear()
        provenance.dirty_digest.cache_clear()
    assert rec["git_dirty"] is True
    assert rec["git_dirty_files"] == ["concrete_ref/a.py", "concrete_ref/b.py"]
    assert dirty == ["concrete_ref/a.py", "concrete_ref/b.py"]


def test_dirty_package_records_a_hash_of_its_diff(tmp_path, monkeypatch):
    """Issue 19 §2: a result from a dirty package records what was dirty, the files and a sha256 of the diff
    (the committed results of before said only ``git_dirty: true``); another change, another hash; a clean
    package none."""
    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "concrete_ref").mkdir()
    (tmp_path / "concrete_ref" / "a.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    monkeypatch.setattr(provenance, "repo_root", lambda: tmp_path)

    def record():
        cached = [f for f in (provenance.code_state, getattr(provenance, "dirty_digest", None)) if f]
        for f in cached:
            f.cache_clear()
        try:
            return provenance.provenance("cmd")
        finally:
            for f in cached:
                f.cache_clear()

    clean = record()
    assert clean["git_dirty"] is False and clean["git_dirty_files"] == [] and clean["git_dirty_sha256"] is None
    (tmp_path / "concrete_ref" / "a.py").write_text("x = 2\n")
    first = record()
    (tmp_path / "concrete_ref" / "a.py").write_text("x = 3\n")
    second = record()
    (tmp_path / "concrete_ref" / "new.py").write_text("y = 1\n")  # untracked: its content counts
    third = record()
    hashes = [r["git_dirty_sha256"] for r in (first, second, third)]
    assert all(isinstance(h, str) and len(h) == 64 and int(h, 16) >= 0 for h in hashes)
    assert len(set(hashes)) == 3
    assert third["git_dirty_files"] == ["concrete_ref/a.py", "concrete_ref/new.py"]
