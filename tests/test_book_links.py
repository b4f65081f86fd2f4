"""The repository URL lives in _config.yml only; every chapter starts with the current Colab set-up cell,
which installs the package at a ref that exists in this repository."""

import json
import shutil
import subprocess

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
    assert bl.install_ref() == bl.repository_branch()  # the package comes from the branch Colab opens
    assert req == f"concrete-ref[experiments] @ git+{url}.git@{bl.install_ref()}"
    assert req in bl.setup_cell_source()
    owner, name = url.removeprefix("https://github.com/").split("/")
    assert bl.pages_url() == f"https://{owner.lower()}.github.io/{name}/"
    workflow = f"{url}/actions/workflows/book.yml"
    assert bl.workflow_badge() == f"[![book]({workflow}/badge.svg?branch={bl.repository_branch()})]({workflow})"


def test_setup_cell_states_the_bounds_of_pyproject():
    source = bl.setup_cell_source()
    assert f"torch>={bl.dependency_bound('torch')}," in source
    assert f"numpy>={bl.dependency_bound('numpy')})" in source
    assert f"`{bl.install_ref()}`" in source


def test_the_installed_ref_exists_in_this_repository():
    """What the Colab cell installs (``git+<url>.git@<ref>``) must name a commit of this repository: the
    branch the book is published from. (It once named a release tag ``v0.1.0`` that was never created.)"""
    ref = bl.install_ref()
    try:
        commit = bl.resolve_ref(ref)
    except RuntimeError as exc:
        pytest.skip(f"cannot ask git about {ref!r} here: {exc}")
    assert commit, (f"the Colab set-up cell installs @{ref}, which is no branch or tag of this repository "
                    "(nor a remote-tracking branch); set repository.branch in _config.yml to the published branch")
    assert len(commit) == 40


def _git(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_resolve_ref_finds_branches_tags_and_remote_branches_only(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "dev")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "--allow-empty", "-m", "one")
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "v9.8.7")
    assert bl.resolve_ref("dev", repo) == head
    assert bl.resolve_ref("v9.8.7", repo) == head
    assert bl.resolve_ref("main", repo) is None and bl.resolve_ref("v0.1.0", repo) is None
    # a CI checkout may have the branch only as origin/<branch> (detached HEAD, no local branch)
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    _git(clone, "checkout", "-q", "--detach")
    _git(clone, "branch", "-q", "-D", "dev")
    assert bl.resolve_ref("dev", clone) == head
    with pytest.raises(RuntimeError, match="not the top of a git work tree"):
        bl.resolve_ref("dev", tmp_path)


def test_ref_command_reports_the_installed_ref(capsys):
    code = bl.main(["ref"])
    out = capsys.readouterr().out
    assert out.startswith(f"{bl.install_ref()}: ")
    assert code == (2 if "cannot check" in out else 0), out


def test_the_url_is_written_nowhere_else():
    """No chapter, page or module spells the URL out; they all derive it (the setup cell is generated)."""
    url = bl.repository_url()
    root = bl.repo_root()
    badge = bl.workflow_badge()  # the README's CI badge is generated too (test_paperwork checks it is there)
    offenders = []
    for path in [*root.glob("chapters/*.ipynb"), *root.glob("book/*.md"), *root.glob("concrete_ref/**/*.py"),
                 root / "README.md"]:
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "".join("".join(c["source"]) for c in json.loads(text)["cells"] if "colab-setup" not in
                           c.get("metadata", {}).get("tags", []))
        if path.name == "README.md":
            text = "\n".join(line for line in text.splitlines() if line != badge)
        if url in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []


def _pyproject(version="9.8.7", torch="2.5"):
    return (f'[project]\nname = "concrete-ref"\nversion = "{version}"\ndependencies = [\n    "numpy>=1.30",\n]\n'
            f'[project.optional-dependencies]\nexperiments = ["torch>={torch}"]\n')


def _mini_repo(tmp_path, url="https://github.com/someone/else", version="9.8.7", branch="dev"):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_config.yml").write_text(f"title: x\nrepository:\n  url: {url}\n  branch: {branch}\n\nhtml:\n  a: 1\n")
    (tmp_path / "pyproject.toml").write_text(_pyproject(version))
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
    source = "".join(cells[1]["source"])
    assert "git+https://github.com/someone/else.git@dev\"" in source  # the branch, as the Colab link's
    assert "torch>=2.5, numpy>=1.30" in source
    assert cells[1]["metadata"]["tags"] == ["remove-cell", "colab-setup"]
    assert bl.stale_notebooks(root) == [] and bl.sync_notebook(path, root) is False
    assert bl.colab_url("chapters/01_x.ipynb", root).endswith("/someone/else/blob/dev/chapters/01_x.ipynb")
    # a version bump alone leaves the cell current (it installs the branch, not a tag) ...
    (root / "pyproject.toml").write_text(_pyproject("9.9.0"))
    assert bl.stale_notebooks(root) == []
    # ... a new torch bound or a new branch makes it stale; sync replaces it instead of adding a second one
    (root / "pyproject.toml").write_text(_pyproject("9.9.0", torch="2.6"))
    assert bl.stale_notebooks(root) == ["chapters/01_x.ipynb"]
    bl.sync_notebook(path, root)
    (root / "_config.yml").write_text("title: x\nrepository:\n  url: https://github.com/someone/else\n"
                                      "  branch: trunk\n")
    assert bl.stale_notebooks(root) == ["chapters/01_x.ipynb"]
    bl.sync_notebook(path, root)
    cells = json.loads(path.read_text())["cells"]
    source = "".join(cells[1]["source"])
    assert len(cells) == 3 and "@trunk\"" in source and "torch>=2.6," in source


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


@pytest.mark.parametrize("branch", ["-x", "a..b", "two words"])
def test_bad_branch_is_rejected(tmp_path, branch):
    root = _mini_repo(tmp_path, branch=f'"{branch}"')
    with pytest.raises(ValueError, match="repository.branch"):
        bl.install_requirement(root)


def test_a_missing_bound_is_an_error_naming_it(tmp_path):
    root = _mini_repo(tmp_path)
    (root / "pyproject.toml").write_text('[project]\nversion = "1.0"\ndependencies = ["numpy"]\n')
    with pytest.raises(ValueError, match="torch no lower bound"):
        bl.setup_cell_source(root)
