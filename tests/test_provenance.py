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
