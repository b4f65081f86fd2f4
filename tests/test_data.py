"""The data loader (concrete_ref.data, concrete_ref._download): sources, verification, caching, splits.

Real binarized MNIST comes from the mirror named by CONCRETE_DATA_MIRROR, or from ../shared/data
beside the repository when the variable is unset; the MNIST tests are skipped (with the reason) only
when neither exists.  Omniglot's chardata.mat is not available offline, so its tests write a small
synthetic file in the real layout (784 x N columns, Fortran order, grey values in [0, 1]) and run the
real loading code on it with the expected checksums replaced by the synthetic file's.  Every test that
writes uses its own temporary cache; nothing here touches data/ or the network (URLs point at servers
started by the tests on 127.0.0.1, or at a closed local port).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from concrete_ref import _download as dl
from concrete_ref import data

REPO = Path(__file__).resolve().parents[1]


def _mnist_mirror() -> str | None:
    value = os.environ.get(dl.MIRROR_ENV) or str(REPO / ".." / "shared" / "data")
    mirror, _ = dl.resolve_mirror(value)
    if mirror is None or dl._is_url(mirror):
        return None
    ok = all(Path(mirror, *s.relpath.split("/")).is_file() for s in data.MNIST_FILES.values())
    return mirror if ok else None


MIRROR = _mnist_mirror()
needs_mnist = pytest.mark.skipif(
    MIRROR is None,
    reason="no local mirror of binarized MNIST: set CONCRETE_DATA_MIRROR to a directory holding "
    "binarized_mnist/binarized_mnist_{train,valid,test}.amat (default ../shared/data beside the repository)",
)
FAST = 2.0  # network timeout for the tests' local servers (s)


# ----------------------------------------------------------------------------------------- helpers
class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves ``self.directory`` (set by :func:`running`) without logging; :meth:`send_half` sends the first
    half of a file while announcing its full Content-Length (a download cut short)."""

    directory_to_serve = "."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=self.directory_to_serve, **kwargs)

    def log_message(self, *args):
        pass

    def send_half(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()


@contextlib.contextmanager
def running(handler, directory: Path, on_close=lambda: None):
    """``handler`` (a :class:`QuietHandler` subclass) serving ``directory`` on 127.0.0.1; yields the base URL."""
    bound = type(handler.__name__, (handler,), {"directory_to_serve": str(directory)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bound)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        on_close()
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def serve(directory: Path, truncate: bool = False):
    """An HTTP server on 127.0.0.1 for ``directory``; ``truncate`` sends half of each file while
    announcing its full Content-Length, then closes the connection."""

    class Handler(QuietHandler):
        def do_GET(self):
            if not truncate:
                return super().do_GET()
            path = Path(self.translate_path(self.path))
            if not path.is_file():
                return self.send_error(404)
            self.send_half(path.read_bytes())
            self.close_connection = True

    with running(Handler, directory) as url:
        yield url


def closed_port_url(name="file") -> str:
    """A URL on a local port nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def leftovers(folder: Path) -> list[str]:
    """Files a failed fetch must not leave: partial downloads and half-written caches."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def toy_spec(tmp_path: Path, content: bytes = b"the content the loader must deliver\n" * 1000, **kw):
    """A small file in a mirror directory, and a FileSpec with its true checksums."""
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "file.bin").write_bytes(content)
    sums = dl.file_checksums(mirror / "toy" / "file.bin", ("sha256", "md5", "git-blob"))
    spec = dl.FileSpec("toy/file.bin", checksums=kw.pop("checksums", sums), title="toy", **kw)
    return mirror, spec


# ----------------------------------------------------------------------------------- checksums
def test_git_blob_id_matches_git(tmp_path):
    # `git hash-object` of the empty file and of "hello\n" (well-known values)
    for content, blob in [(b"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"), (b"hello\n", "ce013625030ba8dba906f756967f9e9ca394464a")]:
        (tmp_path / "f").write_bytes(content)
        assert dl.file_checksums(tmp_path / "f", ["git-blob"])["git-blob"] == blob


def test_expected_checksums_are_the_documented_ones():
    assert {s: f.checksums["sha256"] for s, f in data.MNIST_FILES.items()} == {
        "train": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
        "valid": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
        "test": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
    }
    assert dict(data.OMNIGLOT_FILE.checksums) == {
        "git-blob": "016a3536ffe5e1d38e42563a18d7a78bfaf643ec", "md5": "21ecaf34373511aa7691cf2e0802aa3d"}
    assert data.OMNIGLOT_FILE.urls[0] == "https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat"
    assert any("cs.toronto.edu/~larocheh" in u for u in data.MNIST_FILES["train"].urls)


# ------------------------------------------------------------------------------- real MNIST
@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """The one full parse of real MNIST: from the mirror into an empty cache (timed)."""
    if MIRROR is None:
        pytest.skip(needs_mnist.kwargs["reason"])
    cache = tmp_path_factory.mktemp("mnist_cache")
    t0 = time.perf_counter()
    arrays = data.load_binarized_mnist(cache=cache, mirror=MIRROR, progress=False)
    return {"cache": cache, "arrays": arrays, "first_load_s": time.perf_counter() - t0}


@needs_mnist
def test_mnist_split_sizes_dtype_values(mnist):
    x = mnist["arrays"]
    assert {k: v.shape for k, v in x.items()} == {"train": (50000, 784), "valid": (10000, 784), "test": (10000, 784)}
    for v in x.values():
        assert v.dtype == np.uint8 and v.flags.c_contiguous
        assert set(np.unique(v)) == {0, 1}
    # pixel means (fraction of "on" pixels) per split, pinned to the values of the verified files
    assert {k: round(float(v.mean()), 4) for k, v in x.items()} == {"train": 0.1306, "valid": 0.1311, "test": 0.1325}


@needs_mnist
def test_mnist_cached_files_have_the_expected_checksums(mnist):
    rows = data.verify("mnist", cache=mnist["cache"])
    assert [r.status for r in rows] == ["OK"] * 4  # three files and the parsed cache
    for split, spec in data.MNIST_FILES.items():
        path = mnist["cache"] / "binarized_mnist" / f"binarized_mnist_{split}.amat"
        assert dl.file_checksums(path)["sha256"] == spec.checksums["sha256"]
        assert path.stat().st_size == spec.size


@needs_mnist
def test_mnist_orientation(mnist):
    """Upright, row-major: checked on pixel statistics of the mean image and of each image.

    LeCun et al.'s MNIST digits were size-normalised to fit a 20 x 20 box preserving their aspect
    ratio and centred by centre of mass in the 28 x 28 field; most digits are taller than wide, so
    the median height is 20 rows and the median width smaller (a transposed array would swap them).
    Handwriting slants forward: the top of a digit lies to the right of its bottom, so the mean
    image's row-column covariance is negative (a left-right or up-down flip would make it positive).
    """
    x = mnist["arrays"]["train"].reshape(-1, 28, 28)
    m = x.mean(0)
    border = np.concatenate([m[:2].ravel(), m[-2:].ravel(), m[:, :2].ravel(), m[:, -2:].ravel()])
    assert m[10:18, 10:18].mean() > 100 * border.mean()
    assert m[0].max() < 0.01 and m[-1].max() < 0.01 and m[:, 0].max() < 0.01 and m[:, -1].max() < 0.01
    r = np.arange(28)
    com_row = (m.sum(1) * r).sum() / m.sum()
    com_col = (m.sum(0) * r).sum() / m.sum()
    assert abs(com_row - 14.0) < 0.5 and abs(com_col - 14.0) < 0.5
    cov = ((r[:, None] - com_row) * (r[None, :] - com_col) * m).sum() / m.sum()
    assert cov < -1.0

    def extent(mask):  # number of rows (or columns) from the first to the last with an "on" pixel
        first = mask.argmax(1)
        last = mask.shape[1] - 1 - mask[:, ::-1].argmax(1)
        return last - first + 1

    height, width = extent(x.any(2)), extent(x.any(1))
    assert np.median(height) == 20 and np.median(width) <= 17 and (height > width).mean() > 0.75


# The first training image, checked by eye once: an upright "6" slanting forward (rows 2-21 of 28).
FIRST_TRAIN_IMAGE = """
........###.................
.........##.................
........###.................
........##..................
.......##...................
......####..................
.......###..................
.......###..........#.......
......###..........####.....
......##.........########...
......###......###....###...
......###.....###...........
......###.....#........##...
......###...###........###..
......###....##........##...
.......##...##........##....
.......###.#........#####...
........###############.....
..........###########.......
...........##.##..#.........
"""


@needs_mnist
def test_mnist_first_image_is_the_upright_six(mnist):
    img = mnist["arrays"]["train"][0].reshape(28, 28)
    expected = np.array([[c == "#" for c in line] for line in FIRST_TRAIN_IMAGE.split()], dtype=np.uint8)
    assert not img[:2].any() and not img[22:].any()
    np.testing.assert_array_equal(img[2:22], expected)


@needs_mnist
def test_mnist_second_load_is_fast_and_identical(mnist):
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        again = data.load_binarized_mnist(cache=mnist["cache"], mirror="/nonexistent")  # cache only
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 1.0, times
    for k in again:
        np.testing.assert_array_equal(again[k], mnist["arrays"][k])
    print(f"first load {mnist['first_load_s']:.2f} s, cached loads {', '.join(f'{t:.3f}' for t in times)} s")


@needs_mnist
@pytest.mark.parametrize("damage", ["flip", "truncate", "replace"])
def test_corrupt_cached_mnist_file_is_reported_and_refetched(tmp_path, damage):
    spec = data.MNIST_FILES["valid"]
    path = dl.ensure_file(spec, cache=tmp_path, mirror=MIRROR, urls=())
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[12345] ^= 1  # "0" <-> "1": still a well-formed file, only the checksum can tell
    elif damage == "truncate":
        raw = raw[: len(raw) // 3]
    else:
        raw = bytearray(b"<html>not the file</html>")
    path.write_bytes(bytes(raw))
    with pytest.warns(dl.DataIntegrityWarning) as record:
        again = dl.ensure_file(spec, cache=tmp_path, mirror=MIRROR, urls=())
    message = str(record[0].message)
    assert f"sha256: expected {spec.checksums['sha256']}, found " in message
    assert dl.file_checksums(again)["sha256"] == spec.checksums["sha256"]
    assert leftovers(tmp_path) == ["binarized_mnist_valid.amat"]


@needs_mnist
def test_wrong_checksum_is_rejected(tmp_path):
    spec = dataclasses.replace(data.MNIST_FILES["valid"], checksums={"sha256": "0" * 64})
    with pytest.raises(data.DataUnavailableError) as err:
        dl.ensure_file(spec, cache=tmp_path / "cache", mirror=MIRROR, urls=())
    assert f"checksum mismatch: sha256: expected {'0' * 64}, found {data.MNIST_FILES['valid'].checksums['sha256']}" in str(err.value)
    assert leftovers(tmp_path / "cache") == []


@needs_mnist
def test_corrupt_mirror_never_reaches_the_caller(tmp_path):
    mirror = tmp_path / "mirror" / "binarized_mnist"
    mirror.mkdir(parents=True)
    for split in ("train", "test"):
        (mirror / f"binarized_mnist_{split}.amat").symlink_to(Path(MIRROR, "binarized_mnist", f"binarized_mnist_{split}.amat"))
    good = Path(MIRROR, "binarized_mnist", "binarized_mnist_valid.amat").read_bytes()
    (mirror / "binarized_mnist_valid.amat").write_bytes(good[:-2] + b"1\n")  # one pixel changed
    spec_urls = {s: dataclasses.replace(f, urls=(closed_port_url(),)) for s, f in data.MNIST_FILES.items()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "MNIST_FILES", spec_urls)
        with pytest.raises(data.DataUnavailableError) as err:
            data.load_binarized_mnist(cache=tmp_path / "cache", mirror=str(tmp_path / "mirror"), timeout=FAST)
    assert "binarized_mnist/binarized_mnist_valid.amat" in str(err.value)
    assert "checksum mismatch" in str(err.value)
    assert not list((tmp_path / "cache").rglob("parsed-*"))  # nothing parsed, nothing cached as parsed
    assert not list((tmp_path / "cache").rglob("*.part"))


# ------------------------------------------------------------------------- sources and failures
def test_mirror_as_file_url_and_http_url(tmp_path):
    mirror, spec = toy_spec(tmp_path)
    got = dl.ensure_file(spec, cache=tmp_path / "c1", mirror=mirror.as_uri(), urls=())
    assert got.read_bytes() == (mirror / "toy" / "file.bin").read_bytes()
    with serve(mirror) as base:
        got = dl.ensure_file(spec, cache=tmp_path / "c2", mirror=base + "/", urls=(), timeout=FAST)
    assert got.read_bytes() == (mirror / "toy" / "file.bin").read_bytes()


def test_public_url_used_after_a_failing_mirror(tmp_path):
    served, spec = toy_spec(tmp_path)
    bad_mirror = tmp_path / "bad"
    (bad_mirror / "toy").mkdir(parents=True)
    (bad_mirror / "toy" / "file.bin").write_bytes(b"stale content")
    with serve(served) as base:
        urls = (closed_port_url(), base + "/missing.bin", base + "/toy/file.bin")
        got = dl.ensure_file(spec, cache=tmp_path / "cache", mirror=str(bad_mirror), urls=urls, timeout=FAST)
    assert dl.mismatches(spec, got) == []


def test_truncated_download_is_rejected(tmp_path):
    mirror, spec = toy_spec(tmp_path)
    with serve(mirror, truncate=True) as base:
        with pytest.raises(dl.DataUnavailableError) as err:
            dl.ensure_file(spec, cache=tmp_path / "cache", mirror=base, urls=(), timeout=FAST)
    total = (mirror / "toy" / "file.bin").stat().st_size
    assert f"truncated download: received {total // 2} of {total} bytes" in str(err.value)
    assert leftovers(tmp_path / "cache") == []


def test_truncated_file_without_length_is_caught_by_checksum(tmp_path):
    mirror, spec = toy_spec(tmp_path)
    path = mirror / "toy" / "file.bin"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(dl.DataUnavailableError) as err:
        dl.ensure_file(spec, cache=tmp_path / "cache", mirror=str(mirror), urls=())
    assert "checksum mismatch: sha256: expected" in str(err.value)
    assert leftovers(tmp_path / "cache") == []


def test_no_source_reachable_lists_every_source(tmp_path, monkeypatch):
    _, spec = toy_spec(tmp_path)
    with serve(tmp_path / "empty_dir_that_does_not_exist") as base:
        urls = (closed_port_url("a"), base + "/b")
        with pytest.raises(RuntimeError) as err:  # DataUnavailableError is a RuntimeError
            dl.ensure_file(spec, cache=tmp_path / "cache", mirror=str(tmp_path / "no_mirror"), urls=urls, timeout=FAST)
    assert isinstance(err.value, dl.DataUnavailableError)
    text = str(err.value)
    assert text.splitlines()[0] == "could not obtain toy/file.bin (toy) from any source; tried 3:"
    assert f"1. mirror: {dl.MIRROR_ENV}=" in text and "no such directory" in text
    assert f"2. {urls[0]}: URLError:" in text
    assert f"3. {urls[1]}: HTTP 404" in text
    assert f"export {dl.MIRROR_ENV}=/path/to/mirror" in text
    assert [a[0] for a in err.value.attempts] == ["mirror", urls[0], urls[1]]
    assert leftovers(tmp_path / "cache") == []
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    with pytest.raises(dl.DataUnavailableError, match=f"1. mirror: {dl.MIRROR_ENV} is not set"):
        dl.ensure_file(spec, cache=tmp_path / "cache", urls=())


def test_stalled_server_times_out(tmp_path):
    _, spec = toy_spec(tmp_path)
    with socket.socket() as listener:  # accepts the connection (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/file"
        t0 = time.perf_counter()
        with pytest.raises(dl.DataUnavailableError, match="timed out"):
            dl.ensure_file(spec, cache=tmp_path / "cache", mirror="", urls=(url,), timeout=0.5)
        assert time.perf_counter() - t0 < 5
    assert leftovers(tmp_path / "cache") == []


def test_relative_mirror_resolves_against_cwd_then_repo_root(tmp_path, monkeypatch):
    (tmp_path / "here" / "m").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here")
    assert dl.resolve_mirror("m") == (str(tmp_path / "here" / "m"), [])
    # not under the cwd, but under the repository root (as ../shared/data is, from chapters/)
    assert dl.resolve_mirror("concrete_ref") == (str(REPO / "concrete_ref"), [])
    mirror, notes = dl.resolve_mirror("nowhere")
    assert mirror is None and "no such directory" in notes[0] and str(tmp_path / "here" / "nowhere") in notes[0]
    assert dl.resolve_mirror("https://example.org/mirror") == ("https://example.org/mirror", [])


def test_cache_dir_default_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv(dl.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if Path(dl.__file__).resolve().parent.parent == REPO:  # running from this checkout (pip install -e .)
        assert dl.repo_root() == REPO and dl.cache_dir() == REPO / "data"
    else:  # installed elsewhere: the per-user cache
        assert dl.cache_dir() == tmp_path / "xdg" / "concrete_book"
    monkeypatch.setattr(dl, "repo_root", lambda: None)  # as if installed into site-packages
    assert dl.cache_dir() == tmp_path / "xdg" / "concrete_book"
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert dl.cache_dir() == tmp_path / "elsewhere"


def test_parse_amat_rejects_malformed_text():
    row = b" ".join([b"0", b"1"] * 392) + b"\n"
    np.testing.assert_array_equal(data.parse_amat(row * 2), np.tile([0, 1], (2, 392)))
    for bad in [row[:-1], row.replace(b"1", b"2", 1), row.replace(b" ", b"\t", 1), row[:-1] + b" "]:
        with pytest.raises(ValueError):
            data.parse_amat(bad)
    with pytest.raises(ValueError, match="expected 3 rows, found 2"):
        data.parse_amat(row * 2, n_rows=3)


# ------------------------------------------------------------------------ Omniglot (synthetic)
# An "F": asymmetric under every flip, rotation and transposition, so orientation errors show.
GLYPH = np.zeros((28, 28), dtype=np.float64)
GLYPH[4:24, 6] = 1.0  # the stem, on the left
GLYPH[4, 6:20] = 1.0  # the top bar
GLYPH[13, 6:15] = 1.0  # the shorter middle bar
N_TRAIN, N_TEST, N_VALID = 40, 12, 7


@pytest.fixture(scope="module")
def omni_mirror(tmp_path_factory):
    """A chardata.mat in IWAE's layout: `data` 784 x 40, `testdata` 784 x 12, images as Fortran-order
    columns.  Column 0 of each is the glyph (exactly 0/1, so its binarization is deterministic); the
    others are random grey levels in [0, 1]."""
    import scipy.io

    rng = np.random.default_rng(2017)
    cols = lambda n: np.column_stack([GLYPH.flatten(order="F")] + [rng.random(784) * (rng.random(784) < 0.3) for _ in range(n - 1)])
    mirror = tmp_path_factory.mktemp("omni_mirror")
    (mirror / "omniglot").mkdir()
    path = mirror / "omniglot" / "chardata.mat"
    scipy.io.savemat(path, {"data": cols(N_TRAIN), "testdata": cols(N_TEST),
                            "target": np.eye(5)[:, rng.integers(5, size=N_TRAIN)],
                            "testtarget": np.eye(5)[:, rng.integers(5, size=N_TEST)]})
    sums = dl.file_checksums(path, ("git-blob", "md5"))
    spec = dataclasses.replace(data.OMNIGLOT_FILE, checksums=sums, urls=(closed_port_url("chardata.mat"),))
    return mirror, spec


def rebar_reference(path, n_validation):
    """REBAR's read_omniglot(binarize=True), written out with NumPy's global generator (whose state is
    restored afterwards): Fortran reshape, float32, np.random.seed(5) Bernoulli draws for train then
    test, RandomState(123) permutation of the training set, last n_validation held out."""
    import scipy.io

    raw = scipy.io.loadmat(str(path))
    reshape = lambda d: d.reshape((-1, 28, 28)).reshape((-1, 28 * 28), order="F")
    train = reshape(raw["data"].T.astype("float32"))
    test = reshape(raw["testdata"].T.astype("float32"))
    state = np.random.get_state()
    try:
        np.random.seed(5)
        train = (np.random.rand(*train.shape) < train).astype(float)
        test = (np.random.rand(*test.shape) < test).astype(float)
    finally:
        np.random.set_state(state)
    train = train[np.random.RandomState(seed=123).permutation(train.shape[0])]
    return {"train": train[:-n_validation], "valid": train[-n_validation:], "test": test}


def test_omniglot_loads_with_rebar_protocol_bit_for_bit(omni_mirror, tmp_path, monkeypatch):
    mirror, spec = omni_mirror
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    got = data.load_omniglot(N_VALID, cache=tmp_path, mirror=str(mirror), timeout=FAST)
    assert {k: v.shape for k, v in got.items()} == {"train": (N_TRAIN - N_VALID, 784), "valid": (N_VALID, 784), "test": (N_TEST, 784)}
    assert all(v.dtype == np.uint8 and v.max() <= 1 for v in got.values())
    ref = rebar_reference(mirror / "omniglot" / "chardata.mat", N_VALID)
    for k in got:
        np.testing.assert_array_equal(got[k], ref[k].astype(np.uint8))
    # the binarization is a real coin flip per pixel: about the grey level on average
    grey_train, _ = data.read_chardata(mirror / "omniglot" / "chardata.mat")
    frac_on = np.concatenate([got["train"], got["valid"]]).mean()
    assert abs(frac_on - grey_train.mean()) < 0.01


def test_omniglot_orientation_is_upright_row_major(omni_mirror, tmp_path, monkeypatch):
    mirror, spec = omni_mirror
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    got = data.load_omniglot(N_VALID, cache=tmp_path, mirror=str(mirror))
    np.testing.assert_array_equal(got["test"][0].reshape(28, 28), GLYPH)  # the test set is not permuted
    glyph_rows = [x for x in np.concatenate([got["train"], got["valid"]]) if np.array_equal(x, GLYPH.ravel())]
    assert len(glyph_rows) == 1  # the training glyph survived the permutation, upright


def test_omniglot_binarization_is_fixed_and_reproducible(omni_mirror, tmp_path, monkeypatch):
    mirror, spec = omni_mirror
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    state = np.random.get_state()
    first = data.load_omniglot(N_VALID, cache=tmp_path / "a", mirror=str(mirror))
    assert np.array_equal(np.random.get_state()[1], state[1])  # NumPy's global generator untouched
    np.random.seed(999)  # the caller's global seeding must not matter
    second = data.load_omniglot(N_VALID, cache=tmp_path / "b", mirror=str(mirror))
    cached = data.load_omniglot(N_VALID, cache=tmp_path / "a", mirror="/nonexistent")  # parsed cache
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
        np.testing.assert_array_equal(first[k], cached[k])
    train, test = data.read_chardata(mirror / "omniglot" / "chardata.mat")
    for chunk in (1, 5, 10_000):  # drawing the uniforms in chunks does not change the stream
        again = data.binarize_omniglot(train, test, N_VALID, chunk_rows=chunk)
        assert all(np.array_equal(again[k], first[k]) for k in first)
    other = data.binarize_omniglot(train, test, N_VALID, binarization_seed=6)
    assert not np.array_equal(other["test"], first["test"])


@pytest.mark.parametrize("holdout", [1, 7, 39])
def test_omniglot_split_sizes_follow_the_holdout(omni_mirror, tmp_path, monkeypatch, holdout):
    mirror, spec = omni_mirror
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    got = data.load_omniglot(holdout, cache=tmp_path, mirror=str(mirror))
    assert (len(got["train"]), len(got["valid"]), len(got["test"])) == (N_TRAIN - holdout, holdout, N_TEST)
    assert data.OMNIGLOT_VALIDATION_SIZE == 1345
    assert data.OMNIGLOT_SIZES == {"train": 24345, "test": 8070}  # so the default split is 23000/1345/8070
    with pytest.raises(ValueError, match="validation_size"):
        data.load_omniglot(N_TRAIN, cache=tmp_path, mirror=str(mirror))


@pytest.mark.parametrize("which", ["git-blob", "md5"])
def test_omniglot_rejects_a_wrong_checksum(omni_mirror, tmp_path, monkeypatch, which):
    mirror, spec = omni_mirror
    wrong = dict(spec.checksums, **{which: "f" * len(spec.checksums[which])})
    monkeypatch.setattr(data, "OMNIGLOT_FILE", dataclasses.replace(spec, checksums=wrong))
    with pytest.raises(data.DataUnavailableError) as err:
        data.load_omniglot(N_VALID, cache=tmp_path, mirror=str(mirror), timeout=FAST)
    text = str(err.value)
    assert f"checksum mismatch: {which}: expected {'f' * len(spec.checksums[which])}, found {spec.checksums[which]}" in text
    assert "omniglot/chardata.mat" in text and "URLError" in text  # the public URL was tried too
    assert leftovers(tmp_path) == []


def test_real_omniglot_checksum_rejects_the_synthetic_file(omni_mirror, tmp_path):
    mirror, _ = omni_mirror
    spec = dataclasses.replace(data.OMNIGLOT_FILE, urls=())
    with pytest.raises(data.DataUnavailableError, match="git-blob: expected 016a3536ffe5e1d38e42563a18d7a78bfaf643ec"):
        dl.ensure_file(spec, cache=tmp_path, mirror=str(mirror))


def test_corrupt_parsed_cache_is_rebuilt(omni_mirror, tmp_path, monkeypatch):
    mirror, spec = omni_mirror
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    good = data.load_omniglot(N_VALID, cache=tmp_path, mirror=str(mirror))
    (parsed,) = (tmp_path / "omniglot").glob("parsed-*.npz")
    key = parsed.stem.split("-", 1)[1]
    damaged = [
        parsed.read_bytes()[:200],  # truncated zip
        b"garbage",
    ]
    for blob in damaged:
        parsed.write_bytes(blob)
        with pytest.warns(data.DataIntegrityWarning, match="parsed cache"):
            again = data.load_omniglot(N_VALID, cache=tmp_path, mirror=str(mirror))
        assert all(np.array_equal(again[k], good[k]) for k in good)
    # well-formed but wrong content: a value 2, then a stale key
    for arrays, k in [(dict(good, train=good["train"] * 2), key), (good, "0" * 16)]:
        np.savez_compressed(parsed, key=np.array(k), format=np.array(1), **arrays)
        with pytest.warns(data.DataIntegrityWarning):
            again = data.load_omniglot(N_VALID, cache=tmp_path, mirror=str(mirror))
        assert all(np.array_equal(again[k2], good[k2]) for k2 in good)


# ------------------------------------------------------------------------------------ command line
def test_cli_fetch_and_verify_synthetic_omniglot(omni_mirror, tmp_path, monkeypatch, capsys):
    mirror, spec = omni_mirror
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(dl.MIRROR_ENV, str(mirror))
    assert data.main(["verify", "--dataset", "omniglot"]) == 2  # missing
    assert "MISSING  omniglot/chardata.mat" in capsys.readouterr().out
    assert data.main(["fetch", "--dataset", "omniglot", "--omniglot-validation", str(N_VALID)]) == 0
    assert f"Omniglot: OK (train {N_TRAIN - N_VALID}, valid {N_VALID}, test {N_TEST})" in capsys.readouterr().out
    assert data.main(["verify", "--dataset", "omniglot"]) == 0  # the file itself was fetched and verified
    out = capsys.readouterr().out
    assert ["OK", "omniglot/chardata.mat", "md5", "expected", spec.checksums["md5"], "found", spec.checksums["md5"]] in [
        line.split() for line in out.splitlines()]
    (tmp_path / "omniglot" / "chardata.mat").write_bytes(b"corrupt")
    assert data.main(["verify", "--dataset", "omniglot"]) == 1
    assert "FAILED   omniglot/chardata.mat" in capsys.readouterr().out


def test_cli_fetch_offline_fails_with_the_sources(tmp_path, monkeypatch, capsys):
    spec = dataclasses.replace(data.OMNIGLOT_FILE, urls=(closed_port_url("chardata.mat"),))
    monkeypatch.setattr(data, "OMNIGLOT_FILE", spec)
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(dl.MIRROR_ENV, str(tmp_path / "no_mirror"))
    assert data.main(["fetch", "--dataset", "omniglot"]) == 1
    err = capsys.readouterr().err
    assert "Omniglot: FAILED" in err and spec.urls[0] in err and dl.MIRROR_ENV in err
    assert leftovers(tmp_path) == []


@needs_mnist
def test_cli_verify_module_entry_point(mnist, tmp_path):
    env = dict(os.environ, **{dl.CACHE_ENV: str(mnist["cache"])})
    run = subprocess.run([sys.executable, "-m", "concrete_ref.data", "verify", "--dataset", "mnist"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    for spec in data.MNIST_FILES.values():
        assert f"OK       {spec.relpath}" in run.stdout and spec.checksums["sha256"] in run.stdout
    bad = tmp_path / "binarized_mnist"
    bad.mkdir()
    (bad / "binarized_mnist_valid.amat").write_bytes(b"0 1\n")
    env[dl.CACHE_ENV] = str(tmp_path)
    run = subprocess.run([sys.executable, "-m", "concrete_ref.data", "verify", "--dataset", "mnist"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert run.returncode == 1
    assert "FAILED   binarized_mnist/binarized_mnist_valid.amat" in run.stdout
    assert "MISSING  binarized_mnist/binarized_mnist_train.amat" in run.stdout
