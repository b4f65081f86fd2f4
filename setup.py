"""Build hook: the committed results (data/results/) travel inside the package as concrete_ref/_results,
so that the chapters find them wherever the package is installed (a wheel, Colab). Everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithResults(build_py):
    def run(self):
        super().run()
        src = Path(__file__).resolve().parent / "data" / "results"
        if not src.is_dir():  # building from an sdist without them: nothing to copy
            return
        dst = Path(self.build_lib) / "concrete_ref" / "_results"
        shutil.rmtree(dst, ignore_errors=True)
        for path in sorted(src.rglob("*")):
            if path.is_file() and path.suffix in (".json", ".md"):
                target = dst / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)


setup(cmdclass={"build_py": BuildPyWithResults})
