"""The two datasets of the paper's density-estimation experiments, fetched, verified and split.

Both loaders return ``{"train", "valid", "test"}`` -> ``uint8`` arrays of shape ``(N, 784)`` with
values in {0, 1}, one image per row in row-major pixel order: ``x[i].reshape(28, 28)`` is the upright
image (row 0 at the top).

Binarized MNIST (:func:`load_binarized_mnist`)
    The paper (Sec. 5.1) uses "the fixed binarization of Salakhutdinov & Murray (2008) and the standard
    50,000/10,000/10,000 split into training/validation/testing" {salakhutdinov2008quantitative}.  The
    files everyone shares under that name are Larochelle & Murray's
    ``binarized_mnist_{train,valid,test}.amat`` {larochelle2011neural}: MNIST {lecun1998gradient}
    binarized once by Bernoulli draws, frozen; each line is one image, 784 values ``0``/``1``
    separated by spaces, row-major and upright.  That these are the paper's files is our reading
    (REBAR's code, from the same group, points at the same URL), not a statement of the paper.
    License: MNIST is distributed under CC BY-SA 3.0; the binarization inherits it.

Omniglot (:func:`load_omniglot`)
    28 x 28 Omniglot {lake2015human} as prepared by Burda et al. {burda2016importance}: the IWAE
    repository's ``chardata.mat`` holds ``data`` (784 x 24,345 training images as columns) and
    ``testdata`` (784 x 8,070), grey values in [0, 1], each column an image in Fortran (column-major)
    order.  The paper states only the 24,345/8,070 split and that "we sampled a fixed binarization".
    **Not stated by the paper** and taken from REBAR's loader (Tucker et al. 2017, same group,
    ``research/rebar/datasets.py``), which we reproduce bit for bit:

    1. reshape each column to an upright image (Fortran order) and cast to float32;
    2. binarize once: ``u < x`` with uniforms ``u`` from the legacy Mersenne-Twister stream seeded with
       5 (REBAR calls ``np.random.seed(5)`` then ``np.random.rand``; we draw the same stream from a
       private ``np.random.RandomState(5)``, which leaves NumPy's global state alone), first for all
       training pixels in row-major order, then for all test pixels;
    3. permute the training images with ``np.random.RandomState(123).permutation`` (IWAE's shuffle
       seed) and hold out the **last 1,345** as the validation set (IWAE's ``n_validation``, where it
       came with dynamic binarization), leaving 23,000 for training.  The test set (8,070) is not
       permuted.

    The paper defines no Omniglot validation set; the seeds 5 and 123 and the holdout of 1,345 are
    REBAR's/IWAE's.  The image orientation follows the IWAE/REBAR reshape and has not been checked on
    the real file here (no copy was reachable offline).  License: the Omniglot data of Lake et al. is
    distributed in ``brendenlake/omniglot`` under the MIT license (our reading of that repository's
    LICENSE file, which covers the repository); ``yburda/iwae`` states no separate license.

Where the files come from, in order: the cache (``data/`` at the repository root, or
``CONCRETE_DATA_DIR``), the mirror named by ``CONCRETE_DATA_MIRROR`` (a directory, or an http(s)/file
base URL, laid out as ``binarized_mnist/<file>`` and ``omniglot/chardata.mat``), then the public URLs
below.  Every file is verified by content (sha256 for MNIST; git blob id *and* MD5 for Omniglot)
before it is used; see :mod:`concrete_ref._download` for the caching rules.

Parsed arrays are cached beside the files as ``parsed-<key>.npz`` (compressed), where ``<key>`` is a
hash of the source checksums (and, for Omniglot, of the binarization parameters), so a second load
reads one small file instead of 110 MB of text.  The parsed cache is validated on load (key, shapes,
dtype, values in {0, 1}; zip CRCs catch corruption) and rebuilt from the verified sources if anything
is off.

Command line::

    python -m concrete_ref.data fetch [--dataset mnist|omniglot|all]
    python -m concrete_ref.data verify [--dataset mnist|omniglot|all]

``verify`` prints, for every cached file, the expected and the found checksum and OK, FAILED or
MISSING; it exits with 0 (all OK), 1 (something FAILED) or 2 (nothing failed, something MISSING).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np

from ._download import (
    CACHE_ENV,
    MIRROR_ENV,
    DataIntegrityWarning,
    DataUnavailableError,
    FileSpec,
    atomic_write,
    cache_dir,
    ensure_file,
    file_checksums,
    resolve_mirror,
)

__all__ = [
    "DataIntegrityWarning",
    "DataUnavailableError",
    "MNIST_FILES",
    "MNIST_SIZES",
    "OMNIGLOT_BINARIZATION_SEED",
    "OMNIGLOT_FILE",
    "OMNIGLOT_PERMUTATION_SEED",
    "OMNIGLOT_SIZES",
    "OMNIGLOT_VALIDATION_SIZE",
    "binarize_omniglot",
    "cache_dir",
    "load_binarized_mnist",
    "load_omniglot",
    "main",
    "omniglot_columns_to_rows",
    "parse_amat",
    "read_chardata",
    "resolve_mirror",
    "verify",
    "VerifyRow",
]

PIXELS = 784
_PARSED_FORMAT = 1  # bump when the parsed-cache layout changes

# ------------------------------------------------------------------------------------------ MNIST
MNIST_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}
_MNIST_SHA256 = {
    "train": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    "valid": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    "test": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
}
# Larochelle's original location (what tensorflow/datasets downloads and checks against the same
# sha256), and the same host over HTTPS.  The content checksum, not the URL, decides.
_MNIST_BASE_URLS = (
    "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist",
    "https://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist",
)
MNIST_FILES = {
    split: FileSpec(
        relpath=f"binarized_mnist/binarized_mnist_{split}.amat",
        checksums={"sha256": digest},
        urls=tuple(f"{base}/binarized_mnist_{split}.amat" for base in _MNIST_BASE_URLS),
        size=MNIST_SIZES[split] * 2 * PIXELS,
        title=f"binarized MNIST, {split} split",
    )
    for split, digest in _MNIST_SHA256.items()
}

# --------------------------------------------------------------------------------------- Omniglot
OMNIGLOT_SIZES = {"train": 24_345, "test": 8_070}  # columns of `data` and `testdata`
OMNIGLOT_VALIDATION_SIZE = 1345  # IWAE's/REBAR's holdout (last 1,345 of the permuted training set)
OMNIGLOT_BINARIZATION_SEED = 5  # REBAR
OMNIGLOT_PERMUTATION_SEED = 123  # IWAE and REBAR
OMNIGLOT_FILE = FileSpec(
    relpath="omniglot/chardata.mat",
    # git blob id as listed in yburda/iwae and mingzhang-yin/ARM-gradient; MD5 as published by a
    # third-party loader of the IWAE URL.  Both must match.
    checksums={"git-blob": "016a3536ffe5e1d38e42563a18d7a78bfaf643ec", "md5": "21ecaf34373511aa7691cf2e0802aa3d"},
    urls=(
        "https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat",
        "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat",
        # the same blob, committed as omniglot.mat; pinned to a commit that has it
        "https://raw.githubusercontent.com/mingzhang-yin/ARM-gradient/"
        "bac893cfcec486bbd00b755b12cf8402053b0e84/omniglot.mat",
    ),
    title="28x28 Omniglot of Burda et al. 2016, chardata.mat",
)


# ------------------------------------------------------------------------------------------ parsing
def parse_amat(raw: bytes, n_rows: int | None = None) -> np.ndarray:
    """Parse Larochelle's ``.amat`` text (rows of 784 ``0``/``1`` separated by single spaces, each
    ending in ``\\n``) into a ``uint8`` array ``(N, 784)``.

    The format has exactly two bytes per pixel, so parsing is a strided view of the bytes, checked
    byte by byte (digits in {0, 1}, spaces between, a newline at each row's end): about 0.2 s for the
    78 MB training file.  Raises ``ValueError`` on anything else.
    """
    row_bytes = 2 * PIXELS
    if len(raw) % row_bytes:
        raise ValueError(f"not an .amat file of 784-pixel binary rows: {len(raw)} bytes is not a multiple of {row_bytes}")
    a = np.frombuffer(raw, dtype=np.uint8).reshape(-1, row_bytes)
    if n_rows is not None and a.shape[0] != n_rows:
        raise ValueError(f"expected {n_rows} rows, found {a.shape[0]}")
    digits, seps = a[:, 0::2], a[:, 1::2]
    if not ((seps[:, :-1] == ord(" ")).all() and (seps[:, -1] == ord("\n")).all()):
        raise ValueError("malformed .amat: separators are not single spaces with a newline at each row's end")
    x = digits - np.uint8(ord("0"))  # wraps around for bytes below '0', caught by the next check
    if x.max(initial=0) > 1:
        raise ValueError("malformed .amat: pixel values other than 0 and 1")
    return np.ascontiguousarray(x)


def omniglot_columns_to_rows(columns: np.ndarray) -> np.ndarray:
    """``chardata.mat`` layout -> ours: a (784, N) array whose columns are images in Fortran order
    becomes a float32 (N, 784) array of upright images in row-major order.

    Equal to IWAE's/REBAR's ``data.T.reshape((-1, 28, 28)).reshape((-1, 784), order='F')``: column
    ``v`` holds pixel (row r, column c) at ``v[r + 28 c]``.
    """
    columns = np.asarray(columns)
    if columns.ndim != 2 or columns.shape[0] != PIXELS:
        raise ValueError(f"expected a (784, N) array of image columns, got shape {columns.shape}")
    n = columns.shape[1]
    return np.ascontiguousarray(columns.T.astype(np.float32).reshape(n, 28, 28).transpose(0, 2, 1)).reshape(n, PIXELS)


def read_chardata(path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``chardata.mat``: (training, test) grey images as float32 ``(N, 784)``, upright row-major."""
    import scipy.io  # lazily: only Omniglot needs it

    mat = scipy.io.loadmat(str(path), variable_names=("data", "testdata"))
    out = []
    for key in ("data", "testdata"):
        if key not in mat:
            raise ValueError(f"{path}: no variable {key!r} (expected IWAE's chardata.mat layout)")
        grey = omniglot_columns_to_rows(mat[key])
        if not (np.isfinite(grey).all() and grey.min(initial=0) >= 0 and grey.max(initial=0) <= 1):
            raise ValueError(f"{path}: {key!r} has values outside [0, 1]")
        out.append(grey)
    return out[0], out[1]


def binarize_omniglot(
    train_grey: np.ndarray,
    test_grey: np.ndarray,
    validation_size: int = OMNIGLOT_VALIDATION_SIZE,
    binarization_seed: int = OMNIGLOT_BINARIZATION_SEED,
    permutation_seed: int = OMNIGLOT_PERMUTATION_SEED,
    chunk_rows: int = 2048,
) -> dict:
    """REBAR's fixed binarization and validation split (see the module docstring), bit for bit.

    ``train_grey``/``test_grey`` are float32 ``(N, 784)`` grey images in [0, 1] (upright, row-major,
    as :func:`read_chardata` returns them).  Pixel ``x`` becomes 1 iff ``u < x`` with ``u`` the next
    uniform of ``np.random.RandomState(binarization_seed)`` (training pixels first, then test pixels,
    row-major); the binarized training images are permuted with
    ``np.random.RandomState(permutation_seed).permutation`` and the last ``validation_size`` of them
    form the validation set.  The uniforms are drawn ``chunk_rows`` images at a time to bound memory;
    the legacy generator's stream does not depend on how the draws are chunked.
    """
    n_train = train_grey.shape[0]
    if not 0 < validation_size < n_train:
        raise ValueError(f"validation_size must be in [1, {n_train - 1}], got {validation_size}")
    rs = np.random.RandomState(binarization_seed)

    def binarize(grey):
        grey = np.asarray(grey, dtype=np.float32)
        out = np.empty(grey.shape, dtype=np.uint8)
        for start in range(0, grey.shape[0], chunk_rows):
            block = grey[start:start + chunk_rows]
            # float64 uniforms against float32 grey values, compared in float64, as REBAR does
            out[start:start + chunk_rows] = rs.random_sample(block.shape) < block
        return out

    train = binarize(train_grey)
    test = binarize(test_grey)
    train = train[np.random.RandomState(permutation_seed).permutation(n_train)]
    cut = n_train - validation_size
    return {"train": np.ascontiguousarray(train[:cut]), "valid": np.ascontiguousarray(train[cut:]), "test": test}


# ------------------------------------------------------------------------------------ parsed cache
def _key(parts: dict) -> str:
    text = "|".join(f"{k}={parts[k]}" for k in sorted(parts)) + f"|format={_PARSED_FORMAT}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_split(name: str, arr: np.ndarray, n_rows: int | None) -> None:
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != PIXELS:
        raise ValueError(f"{name}: expected uint8 (N, 784), found {arr.dtype} {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows, found {arr.shape[0]}")
    if arr.max(initial=0) > 1:
        raise ValueError(f"{name}: values other than 0 and 1")


def _load_parsed(path: Path, key: str, sizes: dict) -> dict | None:
    """The arrays of a valid parsed cache, ``None`` if absent; warns and deletes it if invalid."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or int(z["format"]) != _PARSED_FORMAT:
                raise ValueError(f"key {z['key']} does not match the sources' key {key}")
            out = {split: z[split] for split in ("train", "valid", "test")}
        for split, arr in out.items():
            _check_split(split, arr, sizes.get(split))
        return out
    except Exception as exc:  # a corrupt zip raises BadZipFile, zlib.error, EOFError, KeyError, ...
        warnings.warn(f"parsed cache {path} is invalid ({type(exc).__name__}: {exc}); rebuilding it from the "
                      "verified source files", DataIntegrityWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None


def _save_parsed(path: Path, key: str, arrays: dict, sources: dict) -> None:
    meta = {"key": np.array(key), "format": np.array(_PARSED_FORMAT),
            "sources": np.array([f"{k} {v}" for k, v in sorted(sources.items())])}
    atomic_write(path, lambda f: np.savez_compressed(f, **meta, **arrays))


# ------------------------------------------------------------------------------------------ loaders
def _mnist_key() -> tuple[str, dict]:
    sources = {split: MNIST_FILES[split].checksums["sha256"] for split in MNIST_SIZES}
    return _key({f"sha256:{k}": v for k, v in sources.items()}), sources


def load_binarized_mnist(*, cache=None, mirror=None, timeout=None, progress=None) -> dict:
    """Larochelle & Murray's fixed binarization of MNIST with the standard 50,000/10,000/10,000 split.

    The paper's "fixed binarization of Salakhutdinov & Murray (2008)" {salakhutdinov2008quantitative}
    as distributed by Larochelle & Murray (2011) {larochelle2011neural}: the three files
    ``binarized_mnist_{train,valid,test}.amat``, each verified by sha256 (the checksums
    tensorflow/datasets publishes for them) before parsing.  The splits are the files: no shuffling,
    no re-binarization.

    Returns ``{"train": (50000, 784), "valid": (10000, 784), "test": (10000, 784)}``, ``uint8`` in
    {0, 1}, row-major upright images.  ``cache`` overrides the cache directory, ``mirror`` the
    ``CONCRETE_DATA_MIRROR`` variable, ``timeout`` the network timeout (s), ``progress`` the download
    progress bar (``None``: on a terminal only).  Raises :class:`DataUnavailableError` if a file can
    be obtained from no source.
    """
    root = Path(cache) if cache is not None else cache_dir()
    key, sources = _mnist_key()
    parsed = root / "binarized_mnist" / f"parsed-{key}.npz"
    arrays = _load_parsed(parsed, key, MNIST_SIZES)
    if arrays is not None:
        return arrays
    arrays = {}
    for split, n in MNIST_SIZES.items():
        path = ensure_file(MNIST_FILES[split], cache=root, mirror=mirror, timeout=timeout, progress=progress)
        arrays[split] = parse_amat(path.read_bytes(), n_rows=n)
    _save_parsed(parsed, key, arrays, {f"sha256:{k}": v for k, v in sources.items()})
    return arrays


def load_omniglot(
    validation_size: int = OMNIGLOT_VALIDATION_SIZE,
    *,
    binarization_seed: int = OMNIGLOT_BINARIZATION_SEED,
    permutation_seed: int = OMNIGLOT_PERMUTATION_SEED,
    cache=None,
    mirror=None,
    timeout=None,
    progress=None,
) -> dict:
    """28 x 28 Omniglot with a fixed binarization and REBAR's validation split.

    The data of Lake et al. (2015) {lake2015human} at 28 x 28 as in Burda et al. (2016)
    {burda2016importance}: ``chardata.mat`` (24,345 training and 8,070 test images, the paper's
    "standard 24,345/8,070 split"), verified by git blob id and MD5.  The paper says only that it
    "sampled a fixed binarization"; the binarization (seed 5), the permutation of the training set
    (seed 123) and the validation holdout (the last ``validation_size`` = 1,345 permuted training
    images) are REBAR's and IWAE's and are **not stated by the paper**; see the module docstring and
    :func:`binarize_omniglot`, which reproduces REBAR's ``read_omniglot(binarize=True)`` bit for bit.

    Returns ``{"train": (23000, 784), "valid": (1345, 784), "test": (8070, 784)}`` (for the default
    holdout), ``uint8`` in {0, 1}, row-major images.  Other arguments as in
    :func:`load_binarized_mnist`.  Raises :class:`DataUnavailableError` if the file can be obtained
    from no source (the message lists every source tried and how to set ``CONCRETE_DATA_MIRROR``).
    """
    root = Path(cache) if cache is not None else cache_dir()
    spec = OMNIGLOT_FILE
    params = {f"{alg}": digest for alg, digest in spec.checksums.items()}
    params.update(validation_size=validation_size, binarization_seed=binarization_seed,
                  permutation_seed=permutation_seed)
    key = _key(params)
    parsed = root / "omniglot" / f"parsed-{key}.npz"
    arrays = _load_parsed(parsed, key, {"valid": validation_size})
    if arrays is not None:
        return arrays
    path = ensure_file(spec, cache=root, mirror=mirror, timeout=timeout, progress=progress)
    train_grey, test_grey = read_chardata(path)
    arrays = binarize_omniglot(train_grey, test_grey, validation_size, binarization_seed, permutation_seed)
    _save_parsed(parsed, key, arrays, params)
    return arrays


# ------------------------------------------------------------------------------------ command line
def _specs(dataset: str) -> list[FileSpec]:
    out = []
    if dataset in ("mnist", "all"):
        out += [MNIST_FILES[s] for s in MNIST_SIZES]
    if dataset in ("omniglot", "all"):
        out.append(OMNIGLOT_FILE)
    return out


@dataclasses.dataclass
class VerifyRow:
    """One line of :func:`verify`: a file (or parsed cache), one checksum, and the verdict."""

    relpath: str
    algorithm: str
    expected: str
    found: str
    status: str  # "OK", "FAILED", "MISSING"


def verify(dataset: str = "all", cache=None) -> list[VerifyRow]:
    """Check every cached source file of ``dataset`` against its expected checksums (and each parsed
    ``.npz`` cache of its sources, if present).  Nothing is fetched or changed."""
    root = Path(cache) if cache is not None else cache_dir()
    rows = []
    for spec in _specs(dataset):
        path = root.joinpath(*spec.relpath.split("/"))
        found = file_checksums(path, spec.checksums) if path.exists() else {}
        for alg, expected in spec.checksums.items():
            got = found.get(alg, "-")
            status = "MISSING" if not found else ("OK" if got == expected.lower() else "FAILED")
            rows.append(VerifyRow(spec.relpath, alg, expected, got, status))
    checks = []
    if dataset in ("mnist", "all"):
        checks.append(("binarized_mnist", _mnist_key()[0], MNIST_SIZES))
    if dataset in ("omniglot", "all"):  # any holdout: check every parsed Omniglot cache present
        for p in sorted((root / "omniglot").glob("parsed-*.npz")):
            checks.append(("omniglot", p.stem[len("parsed-"):], {}))
    for folder, key, sizes in checks:
        p = root / folder / f"parsed-{key}.npz"
        if not p.exists():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataIntegrityWarning)
            ok = _peek_parsed(p, key, sizes)
        rows.append(VerifyRow(f"{folder}/{p.name}", "parsed", key, key if ok else "invalid", "OK" if ok else "FAILED"))
    return rows


def _peek_parsed(path: Path, key: str, sizes: dict) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return False
            for split in ("train", "valid", "test"):
                _check_split(split, z[split], sizes.get(split))
        return True
    except Exception:
        return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m concrete_ref.data",
        description="Fetch and verify the datasets of the Concrete paper (binarized MNIST, Omniglot). "
        f"Cache: {CACHE_ENV} or data/ in the repository; mirror: {MIRROR_ENV}.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="fetch, verify and parse the dataset(s) into the cache")
    p_fetch.add_argument("--dataset", choices=["mnist", "omniglot", "all"], default="all")
    p_fetch.add_argument("--timeout", type=float, default=None, help="network timeout in seconds (default 30)")
    p_fetch.add_argument("--omniglot-validation", type=int, default=OMNIGLOT_VALIDATION_SIZE,
                         help="Omniglot training images held out for validation (default 1345, REBAR's)")
    p_verify = sub.add_parser("verify", help="check the cached files' checksums; exit 1 if one FAILED, 2 if one is MISSING")
    p_verify.add_argument("--dataset", choices=["mnist", "omniglot", "all"], default="all")
    args = parser.parse_args(argv)

    root = cache_dir()
    print(f"cache: {root}")
    if args.command == "fetch":
        mirror, notes = resolve_mirror()
        print(f"mirror: {mirror if mirror else '; '.join(notes)}")
        status = 0
        loaders = {"mnist": ("binarized MNIST", load_binarized_mnist),
                   "omniglot": ("Omniglot", lambda **kw: load_omniglot(args.omniglot_validation, **kw))}
        for name in (["mnist", "omniglot"] if args.dataset == "all" else [args.dataset]):
            title, loader = loaders[name]
            try:
                arrays = loader(timeout=args.timeout, progress=True)
            except DataUnavailableError as exc:
                print(f"{title}: FAILED\n{exc}", file=sys.stderr)
                status = 1
                continue
            sizes = ", ".join(f"{k} {v.shape[0]}" for k, v in arrays.items())
            print(f"{title}: OK ({sizes})")
        return status

    rows = verify(args.dataset)
    width = max(len(r.relpath) for r in rows)
    for r in rows:
        print(f"{r.status:<7}  {r.relpath:<{width}}  {r.algorithm:<8}  expected {r.expected}  found {r.found}")
    if any(r.status == "FAILED" for r in rows):
        return 1
    return 2 if any(r.status == "MISSING" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
