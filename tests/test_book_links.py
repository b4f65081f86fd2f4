"""The repository URL lives in _config.yml only; every chapter starts with the current Colab set-up cell."""

import json
import shutil

import pytest

from concrete_ref import book_links as bl


def test_every_chapter_has_the_current_setup_cell():
    assert bl.stale_notebooks() == [], "run `python -m concrete_ref.book_links sync`"


def test_links_derive_from_config():
    url = bl.repository_url()
    assert url.startswith("https://github.com/")
    assert bl.colab_url("chapters/03_concrete.ipynb") == (
        f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/"
        f"{bl.repository_branch()}/chapters/03_concrete.ipynb")
    req = bl.install_requirement()
    assert req == f"concrete-ref[experiments] @ git+{url}.git@v{bl.package_version()}"
    assert req in bl.setup_cell_source()


def test_the_url_is_written_nowhere_else():
    """No chapter, page or module spells the URL out; they all derive it (the setup cell is generated)."""
    url = bl.repository_url()
    root = bl.repo_root()
    offenders = []
    for path in [*root.glob("chapters/*.ipynb"), *root.glob("book/*.md"), *root.glob("concrete_ref/**/*.py"),
                 root / "README.md"]:
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "".join("".join(c["source"]) for c in json.loads(text)["cells"] if "colab-setup" not in
                           c.get("metadata", {}).get("tags", []))
        if url in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []


def _mini_repo(tmp_path, url="https://github.com/someone/else", version="9.8.7"):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_config.yml").write_text(f"title: x\nrepository:\n  url: {url}\n  branch: dev\n\nhtml:\n  a: 1\n")
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "concrete-ref"\nversion = "{version}"\n')
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
                    {"cell_type": "code", "metadata": {}, "source": ["print(1)"], "outputs": [],
                     "execution_count": 1}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "chapters" / "01_x.ipynb").write_text(json.dumps(nb))
    return tmp_path


def test_sync_inserts_replaces_and_is_idempotent(tmp_path):
    root = _mini_repo(tmp_path)
    assert bl.stale_notebooks(root) == ["chapters/01_x.ipynb"]
    path = root / "chapters" / "01_x.ipynb"
    assert bl.sync_notebook(path, root) is True
    cells = json.loads(path.read_text())["cells"]
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code"]
    assert "git+https://github.com/someone/else.git@v9.8.7" in "".join(cells[1]["source"])
    assert cells[1]["metadata"]["tags"] == ["remove-cell", "colab-setup"]
    assert bl.stale_notebooks(root) == [] and bl.sync_notebook(path, root) is False
    assert bl.colab_url("chapters/01_x.ipynb", root).endswith("/someone/else/blob/dev/chapters/01_x.ipynb")
    # a new version makes the cell stale; sync replaces it instead of adding a second one
    (root / "pyproject.toml").write_text('[project]\nversion = "9.9.0"\n')
    assert bl.stale_notebooks(root) == ["chapters/01_x.ipynb"]
    bl.sync_notebook(path, root)
    cells = json.loads(path.read_text())["cells"]
    assert len(cells) == 3 and "@v9.9.0" in "".join(cells[1]["source"])


def test_setup_cell_is_a_no_op_outside_colab():
    source = bl.setup_cell_source()
    ipython = pytest.importorskip("IPython.core.inputtransformer2")
    code = ipython.TransformerManager().transform_cell(source)  # what the kernel runs: %pip becomes a call
    calls = []
    exec(compile(code, "<setup>", "exec"), {"get_ipython": lambda: type("I", (), {
        "run_line_magic": lambda self, *a: calls.append(a)})()})
    assert calls == []  # not in Colab: nothing installed


def test_bad_repository_url_is_rejected(tmp_path):
    root = _mini_repo(tmp_path, url="git@github.com:someone/else")
    with pytest.raises(ValueError, match="repository.url"):
        bl.repository_url(root)
