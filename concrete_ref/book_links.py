"""Links from the book to its repository, and the Colab set-up cell of every chapter.

The repository URL lives in one place, ``_config.yml`` (``repository: url:`` and ``branch:``); Jupyter
Book builds the launch and repository buttons from it, and this module derives everything else from it:

* :func:`colab_url` gives the Colab address of a chapter (what the book's launch button opens): the
  notebook on the branch ``repository: branch:`` (``main``);
* :func:`setup_cell_source` gives the first cell of every chapter, which in Google Colab installs this
  package with ``pip`` from the repository at :func:`install_ref`, the same branch, so the code Colab
  installs is the code the notebook it opened was executed with (a branch always exists, where a release
  tag may not; see ``RELEASING.md``).  It asks for the ``experiments`` extra (PyTorch), whose loose lower
  bounds (``pyproject.toml``) Colab's own torch and numpy satisfy, so pip keeps them instead of replacing
  them.  Anywhere else the cell does nothing: locally ``make env`` has installed everything, and nbval
  runs it as a no-op.  Data in Colab comes from the public sources (no ``CONCRETE_DATA_MIRROR`` there);
* :func:`pages_url` and :func:`workflow_badge` give the address of the published book (GitHub Pages)
  and the README's CI badge, which ``tests/test_book_links.py`` and ``tests/test_paperwork.py`` compare
  with ``README.md`` and ``CITATION.cff``.

``python -m concrete_ref.book_links sync`` writes that cell (tagged ``remove-cell`` so the web book
hides it, and ``colab-setup``) at the top of every notebook in ``chapters/``, replacing an older one;
``python -m concrete_ref.book_links check`` exits non-zero when a notebook's cell is missing or stale
(``tests/test_book_links.py`` runs the same check), and ``python -m concrete_ref.book_links ref`` prints
the ref the cell installs and exits non-zero when this checkout's git does not know it.  Standard
library only.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["repo_root", "repository_url", "repository_branch", "package_version", "dependency_bound",
           "colab_url", "pages_url", "workflow_badge", "install_ref", "install_requirement", "resolve_ref",
           "setup_cell_source", "sync_notebook", "stale_notebooks"]

SETUP_TAGS = ["remove-cell", "colab-setup"]


def repo_root() -> Path:
    """The repository root (the folder holding ``_config.yml``), from this file's location."""
    return Path(__file__).resolve().parent.parent


def _config_section(name: str, root: Path | None = None) -> dict:
    """The ``key: value`` lines of a top-level section of ``_config.yml`` (flat sections only)."""
    text = (Path(root or repo_root()) / "_config.yml").read_text()
    m = re.search(rf"^{name}:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", text, flags=re.M)
    if not m:
        raise ValueError(f"_config.yml has no '{name}:' section")
    out = {}
    for line in m.group(1).splitlines():
        kv = re.match(r"\s+([A-Za-z_]+):\s*(.*?)\s*$", line)
        if kv:
            out[kv.group(1)] = kv.group(2).strip("\"'")
    return out


def repository_url(root: Path | None = None) -> str:
    """``https://github.com/<owner>/<name>``, as written in ``_config.yml``."""
    url = _config_section("repository", root).get("url", "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"_config.yml repository.url must be https://github.com/<owner>/<name>; got {url!r}")
    return url


def repository_branch(root: Path | None = None) -> str:
    """The branch the book is published from (``repository: branch:``, default ``main``)."""
    branch = _config_section("repository", root).get("branch", "main") or "main"
    if not re.fullmatch(r"[A-Za-z0-9][\w./-]*", branch) or ".." in branch:
        raise ValueError(f"_config.yml repository.branch is not a branch name: {branch!r}")
    return branch


def package_version(root: Path | None = None) -> str:
    """The ``version`` in ``pyproject.toml``; the release tag is ``v<version>``."""
    text = (Path(root or repo_root()) / "pyproject.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.M)
    if not m:
        raise ValueError("pyproject.toml has no version")
    return m.group(1)


def dependency_bound(name: str, root: Path | None = None) -> str:
    """The lower bound ``pyproject.toml`` gives ``name`` (e.g. ``"2.4"`` for ``"torch>=2.4"``)."""
    text = (Path(root or repo_root()) / "pyproject.toml").read_text()
    m = re.search(rf'"{re.escape(name)}\s*>=\s*([0-9][0-9A-Za-z.]*)', text)
    if not m:
        raise ValueError(f"pyproject.toml gives {name} no lower bound (\"{name}>=...\")")
    return m.group(1)


def colab_url(notebook: str, root: Path | None = None) -> str:
    """The Colab address of a notebook given by its path in the repository (e.g. ``chapters/03_concrete.ipynb``)."""
    owner_name = repository_url(root).removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{repository_branch(root)}/{notebook}"


def pages_url(root: Path | None = None) -> str:
    """Where GitHub Pages publishes the book: ``https://<owner>.github.io/<name>/``."""
    owner, name = repository_url(root).removeprefix("https://github.com/").split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def workflow_badge(root: Path | None = None, workflow: str = "book.yml") -> str:
    """The README's status badge of the workflow that tests, builds and publishes the book."""
    url = repository_url(root)
    return (f"[![{Path(workflow).stem}]({url}/actions/workflows/{workflow}/badge.svg?branch="
            f"{repository_branch(root)})]({url}/actions/workflows/{workflow})")


def install_ref(root: Path | None = None) -> str:
    """The git ref the Colab set-up cell installs: the branch Colab opens the notebooks from."""
    return repository_branch(root)


def install_requirement(root: Path | None = None) -> str:
    """The pip requirement that installs the package, with PyTorch's extra, at :func:`install_ref`."""
    return f"concrete-ref[experiments] @ git+{repository_url(root)}.git@{install_ref(root)}"


def resolve_ref(ref: str, root: Path | None = None) -> str | None:
    """The commit ``ref`` names in the git repository at ``root``: as a local branch or tag, or as a
    remote-tracking branch (``origin/<ref>``, what a CI checkout may have instead of a local branch).
    ``None`` when git knows no such ref; ``RuntimeError`` when there is no git or ``root`` is not a
    git work tree (the question cannot be answered there)."""
    git = shutil.which("git")
    root = Path(root or repo_root())
    if git is None:
        raise RuntimeError("git is not installed")

    def run(*args):
        return subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True, timeout=60)

    top = run("rev-parse", "--show-toplevel")
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
        raise RuntimeError(f"{root} is not the top of a git work tree")
    remotes = run("remote").stdout.split()
    for name in [ref, f"refs/heads/{ref}", f"refs/tags/{ref}", *(f"refs/remotes/{r}/{ref}" for r in remotes)]:
        found = run("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    return None


def setup_cell_source(root: Path | None = None) -> str:
    """The first cell of every chapter (see the module docstring)."""
    return (
        f"# Set-up for Google Colab: install the book's package from its repository at the branch\n"
        f"# `{install_ref(root)}`, the one Colab opened this notebook from, so code and chapter match.\n"
        f"# pip keeps Colab's own torch and numpy (the package asks only for torch>={dependency_bound('torch', root)}, "
        f"numpy>={dependency_bound('numpy', root)}).\n"
        "# Anywhere else this cell does nothing: locally `make env` has installed everything.\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    %pip install --quiet \"{install_requirement(root)}\"\n"
    )


def _setup_cell(root: Path | None = None) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": "colab-setup",
            "metadata": {"tags": list(SETUP_TAGS)}, "outputs": [],
            "source": setup_cell_source(root).splitlines(keepends=True)}


def _is_setup_cell(cell: dict) -> bool:
    return "colab-setup" in cell.get("metadata", {}).get("tags", [])


def sync_notebook(path: Path, root: Path | None = None) -> bool:
    """Put the current set-up cell first in the notebook at ``path``; returns whether the file changed."""
    nb = json.loads(Path(path).read_text())
    if not _stale(nb["cells"], root):  # an executed cell (outputs, execution metadata) is still current
        return False
    cells = [c for c in nb["cells"] if not _is_setup_cell(c)]
    first_markdown = 1 if cells and cells[0]["cell_type"] == "markdown" else 0  # after the chapter title
    new_cells = cells[:first_markdown] + [_setup_cell(root)] + cells[first_markdown:]
    if new_cells == nb["cells"]:
        return False
    nb["cells"] = new_cells
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def stale_notebooks(root: Path | None = None) -> list[str]:
    """Chapters whose set-up cell is missing, misplaced, duplicated or differs from :func:`setup_cell_source`."""
    root = Path(root or repo_root())
    return [str(path.relative_to(root)) for path in sorted((root / "chapters").glob("*.ipynb"))
            if _stale(json.loads(path.read_text())["cells"], root)]


def _stale(cells: list, root: Path | None = None) -> bool:
    """Whether the set-up cell is missing, duplicated, not the first code cell, or not the current one."""
    setup = [i for i, c in enumerate(cells) if _is_setup_cell(c)]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)
    return not (len(setup) == 1 and setup[0] == first_code
                and "".join(cells[setup[0]]["source"]) == setup_cell_source(root)
                and cells[setup[0]]["metadata"].get("tags") == SETUP_TAGS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.book_links", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["sync", "check", "url", "pages-url", "badge", "ref"])
    args = p.parse_args(argv)
    root = repo_root()
    if args.action in ("url", "pages-url", "badge"):
        print({"url": repository_url, "pages-url": pages_url, "badge": workflow_badge}[args.action](root))
        return 0
    if args.action == "ref":
        ref = install_ref(root)
        try:
            commit = resolve_ref(ref, root)
        except RuntimeError as exc:
            print(f"{ref}: cannot check here ({exc})")
            return 2
        print(f"{ref}: {commit}" if commit else f"{ref}: no such branch or tag in this repository")
        return 0 if commit else 1
    if args.action == "sync":
        for path in sorted((root / "chapters").glob("*.ipynb")):
            if sync_notebook(path, root):
                print(f"updated {path.relative_to(root)}")
        return 0
    stale = stale_notebooks(root)
    for s in stale:
        print(f"stale Colab set-up cell: {s} (run `python -m concrete_ref.book_links sync`)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
