"""Faults of the data cache (issue 19, "Data"): each test here failed on the loader before the fix.

1. a corrupt or missing *source* file under a valid parsed cache: ``verify`` reports it, ``fetch`` (and
   every load) repairs it, and afterwards the two agree;
2. the parsed cache is checked against the verified sources' checksums and against its own content
   digest, not only its key;
3. ``.part`` files left by a killed download are removed by the next fetch (but not those of a
   download still running);
4. a read-only cache with verified files loads without writing; when a write is needed and
   impossible, the error names the folder;
5. a bad ``CONCRETE_DATA_TIMEOUT`` (non-numeric, zero, negative, inf, nan, too large) is an error
   naming the variable and the accepted range.

Like tests/test_data.py: temporary caches only, servers on 127.0.0.1 only, real MNIST from the
mirror when there is one, synthetic Omniglot otherwise.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from concrete_ref import _download as dl
from concrete_ref import data
from tests.test_data import (MIRROR, N_VALID, REPO, QuietHandler, leftovers, needs_mnist, omni_mirror,  # noqa: F401
                             running, toy_spec)

NOT_WRITABLE = getattr(dl, "CacheNotWritableError", dl.DataUnavailableError)
CACHE_WRITE_WARNING = getattr(dl, "CacheWriteWarning", UserWarning)


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.part"))


@pytest.fixture
def omni(omni_mirror, tmp_path, monkeypatch):
    """Synthetic Omniglot fetched into a fresh cache (file and parsed cache), with the CLI's
    environment pointing at that cache and at the mirror."""
    mirror, spec = omni_mirror
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    cache = tmp_path / "cache"
    monkeypatch.setenv(dl.CACHE_ENV, str(cache))
    monkeypatch.setenv(dl.MIRROR_ENV, str(mirror))
    good = data.load_omniglot(N_VALID, cache=cache, mirror=str(mirror))
    (parsed,) = (cache / "omniglot").glob("parsed-*.npz")
    return dict(mirror=mirror, spec=spec, cache=cache, good=good, parsed=parsed,
                source=cache / "omniglot" / "chardata.mat")


def load_omni(o, **kw):
    return data.load_omniglot(N_VALID, cache=o["cache"], mirror=str(o["mirror"]), **kw)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def flip_byte(path: Path, offset: int = -100) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


# ------------------------------------------------ 1. a valid parsed cache must not hide a bad source
@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_bad_source_under_valid_parsed_cache_is_reported_and_repaired_by_fetch(omni, capsys, damage):
    if damage == "corrupt":
        flip_byte(omni["source"])
    else:
        omni["source"].unlink()
    assert data.main(["verify", "--dataset", "omniglot"]) == (1 if damage == "corrupt" else 2)
    out = capsys.readouterr().out
    assert ("FAILED   omniglot/chardata.mat" if damage == "corrupt" else "MISSING  omniglot/chardata.mat") in out
    with warnings.catch_warnings(record=True) as record:  # a corrupt file is reported before it is replaced
        warnings.simplefilter("always")
        assert data.main(["fetch", "--dataset", "omniglot", "--omniglot-validation", str(N_VALID)]) == 0
    if damage == "corrupt":
        assert any(issubclass(w.category, data.DataIntegrityWarning) and "failed verification" in str(w.message)
                   for w in record)
    assert dl.mismatches(omni["spec"], omni["source"]) == []  # repaired
    capsys.readouterr()
    assert data.main(["verify", "--dataset", "omniglot"]) == 0  # fetch and verify agree
    assert "FAILED" not in capsys.readouterr().out
    assert same(load_omni(omni), omni["good"])


def test_load_repairs_a_corrupt_source_under_a_valid_parsed_cache(omni):
    flip_byte(omni["source"])
    with pytest.warns(data.DataIntegrityWarning, match="omniglot/chardata.mat failed verification"):
        again = load_omni(omni)
    assert same(again, omni["good"])
    assert dl.mismatches(omni["spec"], omni["source"]) == []
    assert all(r.status == "OK" for r in data.verify("omniglot", cache=omni["cache"]))


@needs_mnist
def test_real_mnist_corrupt_source_under_valid_parsed_cache(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    first = data.load_binarized_mnist(cache=cache, mirror=MIRROR, progress=False)
    assert len(list((cache / "binarized_mnist").glob("parsed-*.npz"))) == 1
    flip_byte(cache / "binarized_mnist" / "binarized_mnist_valid.amat", 12344)  # "0" <-> "1": well formed
    monkeypatch.setenv(dl.CACHE_ENV, str(cache))
    monkeypatch.setenv(dl.MIRROR_ENV, MIRROR)
    assert data.main(["verify", "--dataset", "mnist"]) == 1
    assert "FAILED   binarized_mnist/binarized_mnist_valid.amat" in capsys.readouterr().out
    with pytest.warns(data.DataIntegrityWarning, match="binarized_mnist_valid.amat failed verification"):
        assert data.main(["fetch", "--dataset", "mnist"]) == 0
    assert data.main(["verify", "--dataset", "mnist"]) == 0
    again = data.load_binarized_mnist(cache=cache, mirror="/nonexistent")
    assert same(again, first)


# ------------------------------------------- 2. the parsed cache is checked against the sources
def rewrite_parsed(path: Path, **changes) -> None:
    """Re-save a parsed cache with some fields changed and every other field exactly as it was."""
    with np.load(path, allow_pickle=False) as z:
        fields = {k: z[k] for k in z.files}
    fields.update(changes)
    np.savez_compressed(path, **fields)


def wrong_digests(lines) -> np.ndarray:
    """The recorded source lines ("... <hex digest>") with every digest replaced by zeros."""
    return np.array([s.rsplit(" ", 1)[0] + " " + "0" * len(s.rsplit(" ", 1)[1]) for s in np.asarray(lines).tolist()])


def test_parsed_cache_records_and_is_checked_against_the_source_checksums(omni):
    with np.load(omni["parsed"], allow_pickle=False) as z:
        recorded = " ".join(np.asarray(z["sources"]).tolist())
    for alg, digest in omni["spec"].checksums.items():
        assert f"omniglot/chardata.mat {alg} {digest}" in recorded
    with np.load(omni["parsed"], allow_pickle=False) as z:
        rewrite_parsed(omni["parsed"], sources=wrong_digests(z["sources"]))
    rows = [r for r in data.verify("omniglot", cache=omni["cache"]) if r.algorithm == "parsed"]
    assert [r.status for r in rows] == ["FAILED"]
    with pytest.warns(data.DataIntegrityWarning, match="parsed cache .* is invalid .*source"):
        again = load_omni(omni)
    assert same(again, omni["good"])
    assert all(r.status == "OK" for r in data.verify("omniglot", cache=omni["cache"]))


def test_parsed_cache_with_altered_content_is_rebuilt(omni):
    with np.load(omni["parsed"], allow_pickle=False) as z:
        train = z["train"].copy()
    train[0, 0] ^= 1  # still uint8 in {0, 1} with the right shape: only a content digest can tell
    rewrite_parsed(omni["parsed"], train=train)
    assert [r.status for r in data.verify("omniglot", cache=omni["cache"]) if r.algorithm == "parsed"] == ["FAILED"]
    with pytest.warns(data.DataIntegrityWarning, match="parsed cache"):
        again = load_omni(omni)
    assert same(again, omni["good"])


def test_fetch_removes_invalid_parsed_caches_so_verify_agrees(omni, capsys):
    other = omni["parsed"].with_name("parsed-0123456789abcdef.npz")  # e.g. left by an older version
    shutil.copy(omni["parsed"], other)
    assert data.main(["verify", "--dataset", "omniglot"]) == 1
    assert data.main(["fetch", "--dataset", "omniglot", "--omniglot-validation", str(N_VALID)]) == 0
    assert data.main(["verify", "--dataset", "omniglot"]) == 0
    assert not other.exists() and omni["parsed"].exists()


# --------------------------------------------------------- 3. leftovers of a killed download
@contextlib.contextmanager
def stalling_server(directory: Path):
    """Serves the first half of each file (announcing its full length), then stalls until closed."""
    release = threading.Event()

    class Handler(QuietHandler):
        def do_GET(self):
            self.send_half(Path(self.translate_path(self.path)).read_bytes())
            release.wait(60)
            self.close_connection = True

    with running(Handler, directory, on_close=release.set) as url:
        yield url


def test_part_file_of_a_killed_download_is_removed_by_the_next_fetch(tmp_path):
    content = os.urandom(3 << 20)  # 3 MiB: the first half (sent, then the server stalls) fills a 1 MiB read
    mirror, spec = toy_spec(tmp_path, content=content)
    cache = tmp_path / "cache"
    code = ("import sys\nfrom concrete_ref import _download as dl\n"
            f"spec = dl.FileSpec('toy/file.bin', checksums={dict(spec.checksums)!r}, title='toy')\n"
            "dl.ensure_file(spec, cache=sys.argv[1], mirror='', urls=(sys.argv[2],), timeout=60, progress=False)\n")
    with stalling_server(mirror) as base:
        proc = subprocess.Popen([sys.executable, "-c", code, str(cache), base + "/toy/file.bin"], cwd=REPO,
                                env={k: v for k, v in os.environ.items() if k != dl.MIRROR_ENV})
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # wait for the half-written temporary file
                found = [p for p in cache.rglob("*.part") if p.stat().st_size > 0] if cache.exists() else []
                if found:
                    break
                assert proc.poll() is None, "the download ended early"
                time.sleep(0.02)
            else:
                pytest.fail("no partial download appeared")
            (live,) = found
            # a fetch while that download is still running leaves its temporary file alone
            got = dl.ensure_file(spec, cache=cache, mirror=str(mirror), urls=())
            assert got.read_bytes() == content and live.exists()
        finally:
            proc.send_signal(signal.SIGKILL)  # killed: no cleanup code of its own runs
            proc.wait(10)
    assert parts(cache) == [live.name]  # what a killed download leaves
    got = dl.ensure_file(spec, cache=cache, mirror=str(mirror), urls=())  # the next fetch (file already cached)
    assert parts(cache) == [] and got.read_bytes() == content
    assert leftovers(cache) == ["file.bin"]


def test_part_files_of_a_killed_parsed_cache_write_are_removed_by_the_next_load(omni):
    folder = omni["parsed"].parent
    dead = [folder / f".{omni['parsed'].name}.k1ll3d.part", folder / ".chardata.mat.zz9xq2.part"]
    for p in dead:
        p.write_bytes(b"half of something")
    assert same(load_omni(omni), omni["good"])
    assert parts(omni["cache"]) == []


# ------------------------------------------------------------------------- 4. read-only cache
class ReadOnly:
    """Makes ``root`` read-only: ``chmod a-w`` on the tree and, because root ignores permissions,
    also makes the write calls (os.open for writing, unlink, rename, mkdir, chmod, open(..., "w"))
    fail with EACCES for paths inside it.  ``attempts`` records every write tried there."""

    def __init__(self, root: Path, monkeypatch):
        self.root = Path(os.path.abspath(root))
        self.attempts: list[str] = []
        self._chmod = os.chmod  # the real one, for undo() (which runs while the patches are still in place)
        for p in [self.root, *self.root.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        mp = monkeypatch

        def inside(path) -> bool:
            if isinstance(path, int):
                return False
            p = Path(os.path.abspath(os.fspath(path)))
            return p == self.root or self.root in p.parents

        def deny(name, path):
            self.attempts.append(f"{name} {path}")
            raise PermissionError(errno.EACCES, "Permission denied (read-only test cache)", os.fspath(path))

        def guard(name, real, n_paths=1):
            def wrapped(*args, **kwargs):
                for path in args[:n_paths]:
                    if inside(path):
                        deny(name, path)
                return real(*args, **kwargs)
            return wrapped

        real_open = os.open
        write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def os_open(path, flags, *args, **kwargs):
            if flags & write_flags and inside(path):
                deny("os.open", path)
            return real_open(path, flags, *args, **kwargs)

        real_builtin_open = builtins.open

        def b_open(file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+") and inside(file):
                deny("open", file)
            return real_builtin_open(file, mode, *args, **kwargs)

        mp.setattr(os, "open", os_open)
        mp.setattr(builtins, "open", b_open)
        for name in ("unlink", "remove", "rmdir", "mkdir", "chmod"):
            mp.setattr(os, name, guard(f"os.{name}", getattr(os, name)))
        for name in ("replace", "rename"):
            mp.setattr(os, name, guard(f"os.{name}", getattr(os, name), n_paths=2))

    def undo(self):
        for p in [self.root, *self.root.rglob("*")]:
            self._chmod(p, p.stat().st_mode | 0o200)


@pytest.fixture
def read_only(monkeypatch):
    made = []

    def make(root):
        made.append(ReadOnly(root, monkeypatch))
        return made[-1]

    yield make
    for r in made:
        r.undo()


def test_read_only_cache_with_verified_files_loads_without_writing(omni, read_only):
    guard = read_only(omni["cache"])
    assert same(load_omni(omni), omni["good"])
    assert guard.attempts == []
    assert all(r.status == "OK" for r in data.verify("omniglot", cache=omni["cache"]))


def test_read_only_cache_without_parsed_cache_still_loads(omni, read_only):
    omni["parsed"].unlink()
    guard = read_only(omni["cache"])
    with pytest.warns(CACHE_WRITE_WARNING, match=str(omni["parsed"].parent)):
        again = load_omni(omni)
    assert same(again, omni["good"])
    assert guard.attempts and all("parsed-" in a for a in guard.attempts)  # it only tried to save the parsed cache


def test_read_only_cache_with_corrupt_parsed_cache_still_loads(omni, read_only):
    omni["parsed"].write_bytes(b"garbage")
    read_only(omni["cache"])
    with pytest.warns(data.DataIntegrityWarning, match="parsed cache"):
        again = load_omni(omni)
    assert same(again, omni["good"])


@pytest.mark.parametrize("damage", ["missing", "corrupt", "no folder"])
def test_read_only_cache_that_needs_a_fetch_names_the_folder(omni, read_only, damage):
    folder = omni["source"].parent
    if damage == "missing":
        omni["source"].unlink()
    elif damage == "corrupt":
        flip_byte(omni["source"])
    else:
        shutil.rmtree(folder)
    read_only(omni["cache"])
    with warnings_allowed(), pytest.raises(NOT_WRITABLE) as err:
        load_omni(omni)
    assert isinstance(err.value, data.DataUnavailableError)
    text = str(err.value)
    assert "not writable" in text and dl.CACHE_ENV in text
    assert str(folder) in text


@contextlib.contextmanager
def warnings_allowed():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.DataIntegrityWarning)
        yield


# ------------------------------------------------------------------------- 5. the timeout setting
@pytest.mark.parametrize("value", ["abc", "0", "-1", "-0.5", "inf", "-inf", "nan", "1e10", "30s"])
def test_bad_timeout_variable_names_the_variable_and_the_range(tmp_path, monkeypatch, value):
    mirror, spec = toy_spec(tmp_path)
    monkeypatch.setenv(dl.TIMEOUT_ENV, value)
    with pytest.raises(ValueError) as err:
        dl.ensure_file(spec, cache=tmp_path / "cache", mirror=str(mirror), urls=())
    text = str(err.value)
    assert dl.TIMEOUT_ENV in text and repr(value) in text
    assert "greater than 0" in text and "86400" in text
    assert leftovers(tmp_path / "cache") == []


def test_good_timeout_values_are_accepted(tmp_path, monkeypatch):
    mirror, spec = toy_spec(tmp_path)
    for value in ["2.5", " 30 ", "1e-3", "86400", ""]:
        monkeypatch.setenv(dl.TIMEOUT_ENV, value)
        assert dl.ensure_file(spec, cache=tmp_path / "cache", mirror=str(mirror), urls=()).is_file()
    monkeypatch.setenv(dl.TIMEOUT_ENV, "5")
    for bad in (0, -3, float("nan"), float("inf")):  # the argument is checked in the same way
        with pytest.raises(ValueError, match="timeout"):
            dl.ensure_file(spec, cache=tmp_path / "cache", mirror=str(mirror), urls=(), timeout=bad)


def test_cli_rejects_a_bad_timeout(omni, monkeypatch, capsys):
    for value in ("nan", "0", "-2", "abc"):
        argv = ["fetch", "--dataset", "omniglot", "--omniglot-validation", str(N_VALID), "--timeout", value]
        with pytest.raises(SystemExit) as exc:
            data.main(argv)
        assert exc.value.code == 2 and "timeout" in capsys.readouterr().err
    monkeypatch.setenv(dl.TIMEOUT_ENV, "-1")
    with pytest.raises(SystemExit) as exc:
        data.main(["fetch", "--dataset", "omniglot"])
    assert exc.value.code == 2 and dl.TIMEOUT_ENV in capsys.readouterr().err
