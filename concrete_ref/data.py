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

Every load verifies the source files first, by content, even when parsed arrays are cached (hashing
110 MB takes about 0.1 s): a corrupt or missing source is fetched again, so a parsed cache never hides
one, and a load succeeds only when the sources are present and verified.

Parsed arrays are cached beside the files as ``parsed-<key>.npz`` (compressed), where ``<key>`` is a
hash of the expected source checksums (and, for Omniglot, of the binarization parameters) and of the
cache format, so a second load reads one small file instead of 110 MB of text.  The parsed cache
records the checksums of the sources it was built from (``sources``: one ``<relpath> <algorithm>
<digest>`` line per checksum), its parameters (``params``, JSON) and a sha256 of its arrays
(``digest``).  On every load it is checked before use: format, key, recorded source checksums equal to
those of the sources just verified, parameters, shapes, dtype ``uint8``, values in {0, 1}, the arrays'
digest, and the zip CRCs (a truncated or corrupt file fails to open).  If anything is off it is
reported (:class:`DataIntegrityWarning`), deleted and rebuilt from the verified sources.

A read-only cache whose sources (and parsed cache) are present and valid loads without writing
anything.  If only the parsed cache cannot be written, the arrays are returned anyway with a
:class:`CacheWriteWarning` naming the folder; if a source must be fetched into a read-only folder,
:class:`CacheNotWritableError` (a :class:`DataUnavailableError`) names the folder.

Command line::

    python -m concrete_ref.data fetch [--dataset mnist|omniglot|all] [--timeout S] [--omniglot-validation N]
    python -m concrete_ref.data verify [--dataset mnist|omniglot|all]

``verify`` prints, for every cached source file, the expected and the found checksum and OK, FAILED
or MISSING, and for every parsed cache present the same checks a load makes (OK or FAILED, with the
reason); it changes nothing and exits with 0 (all OK), 1 (something FAILED) or 2 (nothing failed,
something MISSING).  ``fetch`` runs the loaders (which verify, repair and rebuild as above) and then
deletes any parsed cache of the dataset that ``verify`` would report as FAILED (e.g. one of an older
format), so that after a successful ``fetch``, ``verify`` exits with 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from ._download import (
    CACHE_ENV,
    MIRROR_ENV,
    CacheNotWritableError,
    CacheWriteWarning,
    DataIntegrityWarning,
    DataUnavailableError,
    FileSpec,
    atomic_write,
    cache_dir,
    ensure_file,
    file_checksums,
    network_timeout,
    resolve_mirror,
)

__all__ = [
    "CacheNotWritableError",
    "CacheWriteWarning",
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
_PARSED_FORMAT = 2  # bump when the parsed-cache layout changes (2: records sources, params and a digest)
_SPLITS = ("train", "valid", "test")

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


def _source_lines(specs) -> list[str]:
    """``<relpath> <algorithm> <digest>`` for every checksum of the given sources, sorted."""
    return sorted(f"{spec.relpath} {alg} {digest.lower()}" for spec in specs for alg, digest in spec.checksums.items())


def _arrays_digest(arrays: dict) -> str:
    """sha256 over the splits' names, dtypes, shapes and bytes, in the order train, valid, test."""
    h = hashlib.sha256()
    for split in _SPLITS:
        a = np.ascontiguousarray(arrays[split])
        h.update(f"{split} {a.dtype.str} {a.shape}\n".encode())
        h.update(a.reshape(-1).view(np.uint8) if a.size else b"")  # the bytes, without a copy
    return h.hexdigest()


def _check_split(name: str, arr: np.ndarray, n_rows: int | None) -> None:
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != PIXELS:
        raise ValueError(f"{name}: expected uint8 (N, 784), found {arr.dtype} {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows, found {arr.shape[0]}")
    if arr.max(initial=0) > 1:
        raise ValueError(f"{name}: values other than 0 and 1")


def _read_parsed(path: Path, key: str, sources: list[str], params: dict | None, sizes: dict) -> dict:
    """The arrays of the parsed cache at ``path``, after every check; ``ValueError`` (or the error of a
    corrupt zip) saying what failed.

    Checked: the file opens and every member's zip CRC holds (a truncated or corrupt file fails
    here); ``format`` is the current one; ``key`` equals ``key``; ``sources`` equals ``sources`` (the
    checksums of the verified source files); ``params`` equals ``params`` (when given); each split is
    ``uint8`` ``(N, 784)`` in {0, 1} with the row counts in ``sizes``; ``digest`` equals the sha256 of
    the arrays.
    """
    with np.load(path, allow_pickle=False) as z:
        missing = {"key", "format", "sources", "params", "digest", *_SPLITS} - set(z.files)
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))} (not a format-{_PARSED_FORMAT} parsed cache)")
        if int(z["format"]) != _PARSED_FORMAT:
            raise ValueError(f"format {int(z['format'])}, expected {_PARSED_FORMAT}")
        if str(z["key"]) != key:
            raise ValueError(f"key {z['key']} does not match the sources' key {key}")
        recorded = [str(x) for x in np.atleast_1d(z["sources"]).tolist()]
        if recorded != sources:
            raise ValueError(f"recorded source checksums {recorded} differ from the verified source checksums "
                             f"{sources}")
        stored_params = json.loads(str(z["params"]))
        if params is not None and stored_params != params:
            raise ValueError(f"parameters {stored_params} differ from {params}")
        digest = str(z["digest"])
        out = {split: z[split] for split in _SPLITS}  # reading a member checks its CRC
    for split, arr in out.items():
        _check_split(split, arr, sizes.get(split))
    found = _arrays_digest(out)
    if found != digest:
        raise ValueError(f"content digest: recorded {digest}, found {found}")
    return out


def _load_parsed(path: Path, key: str, sources: list[str], params: dict, sizes: dict) -> dict | None:
    """The arrays of a valid parsed cache (see :func:`_read_parsed`), ``None`` if absent; if invalid,
    warns (:class:`DataIntegrityWarning`), deletes it when the folder allows, and returns ``None``."""
    if not path.exists():
        return None
    try:
        return _read_parsed(path, key, sources, params, sizes)
    except Exception as exc:  # a corrupt zip raises BadZipFile, zlib.error, EOFError, KeyError, ...
        warnings.warn(f"parsed cache {path} is invalid ({type(exc).__name__}: {exc}); rebuilding it from the "
                      "verified source files", DataIntegrityWarning, stacklevel=3)
        try:
            path.unlink(missing_ok=True)
        except OSError:  # a read-only cache: the rebuilt arrays are returned without replacing it
            pass
        return None


def _save_parsed(path: Path, key: str, arrays: dict, sources: list[str], params: dict) -> None:
    """Write the parsed cache atomically; if the folder cannot be written, warn
    (:class:`CacheWriteWarning`, naming the folder) and go on: the cache only saves time."""
    meta = {"key": np.array(key), "format": np.array(_PARSED_FORMAT), "sources": np.array(sources),
            "params": np.array(json.dumps(params, sort_keys=True)), "digest": np.array(_arrays_digest(arrays))}
    try:
        atomic_write(path, lambda f: np.savez_compressed(f, **meta, **arrays))
    except CacheNotWritableError as exc:
        warnings.warn(f"could not write the parsed cache {path.name} into {exc.folder} (not writable); the arrays "
                      "were parsed from the verified sources and are returned, and the next load parses them "
                      "again", CacheWriteWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------ loaders
def _mnist_key() -> str:
    return _key({f"sha256:{split}": MNIST_FILES[split].checksums["sha256"] for split in MNIST_SIZES})


def _omniglot_params(validation_size: int, binarization_seed: int, permutation_seed: int) -> dict:
    return {"validation_size": int(validation_size), "binarization_seed": int(binarization_seed),
            "permutation_seed": int(permutation_seed)}


def _omniglot_key(params: dict) -> str:
    return _key({**{alg: digest for alg, digest in OMNIGLOT_FILE.checksums.items()}, **params})


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
    be obtained from no source (:class:`CacheNotWritableError` if it must be fetched into a read-only
    cache).

    Checked on every call: each of the three files against its sha256 (:func:`ensure_file`; a
    corrupt or missing one is fetched again, with a warning for a corrupt one), then the parsed cache
    against the verified files' checksums and its own content (see the module docstring); it is
    rebuilt if it fails.  Nothing is written when everything is present and valid.
    """
    root = Path(cache) if cache is not None else cache_dir()
    specs = [MNIST_FILES[split] for split in MNIST_SIZES]
    paths = {split: ensure_file(spec, cache=root, mirror=mirror, timeout=timeout, progress=progress)
             for split, spec in zip(MNIST_SIZES, specs)}
    sources = _source_lines(specs)  # the files now match these checksums: ensure_file verified them
    key = _mnist_key()
    parsed = root / "binarized_mnist" / f"parsed-{key}.npz"
    arrays = _load_parsed(parsed, key, sources, {}, MNIST_SIZES)
    if arrays is not None:
        return arrays
    arrays = {split: parse_amat(paths[split].read_bytes(), n_rows=n) for split, n in MNIST_SIZES.items()}
    _save_parsed(parsed, key, arrays, sources, {})
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

    Checked on every call, as for MNIST: ``chardata.mat`` against its git blob id and MD5 (fetched
    again if corrupt or missing), then the parsed cache against those checksums, the three
    parameters and its own content; it is rebuilt if it fails.
    """
    root = Path(cache) if cache is not None else cache_dir()
    spec = OMNIGLOT_FILE
    path = ensure_file(spec, cache=root, mirror=mirror, timeout=timeout, progress=progress)
    sources = _source_lines([spec])  # chardata.mat now matches these checksums: ensure_file verified it
    params = _omniglot_params(validation_size, binarization_seed, permutation_seed)
    key = _omniglot_key(params)
    parsed = root / "omniglot" / f"parsed-{key}.npz"
    arrays = _load_parsed(parsed, key, sources, params, {"valid": validation_size})
    if arrays is not None:
        return arrays
    train_grey, test_grey = read_chardata(path)
    arrays = binarize_omniglot(train_grey, test_grey, validation_size, binarization_seed, permutation_seed)
    _save_parsed(parsed, key, arrays, sources, params)
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


def _check_parsed_file(path: Path) -> tuple[str, str | None]:
    """``(key, None)`` if the parsed cache at ``path`` passes every check a load makes, else
    ``(key, reason)``.  The key and sizes expected are derived from the folder (the dataset), the
    current expected checksums and, for Omniglot, the parameters recorded in the file; the file's name
    must be ``parsed-<that key>.npz``."""
    folder = path.parent.name
    key = path.stem[len("parsed-"):]  # until the expected key is known
    try:
        if folder == "binarized_mnist":
            key, sources, params, sizes = _mnist_key(), _source_lines(MNIST_FILES.values()), {}, MNIST_SIZES
        else:
            with np.load(path, allow_pickle=False) as z:
                params = json.loads(str(z["params"])) if "params" in z.files else None
            if not isinstance(params, dict) or set(params) != set(_omniglot_params(0, 0, 0)):
                raise ValueError("no Omniglot parameters recorded (not a current parsed cache)")
            key, sources = _omniglot_key(params), _source_lines([OMNIGLOT_FILE])
            sizes = {"valid": params["validation_size"]}
        if path.name != f"parsed-{key}.npz":
            raise ValueError(f"named for key {path.stem[len('parsed-'):]}, but its sources and parameters give "
                             f"key {key}")
        _read_parsed(path, key, sources, params, sizes)
        return key, None
    except Exception as exc:
        return key, f"{type(exc).__name__}: {exc}"


_FOLDERS = {"mnist": "binarized_mnist", "omniglot": "omniglot"}


def _parsed_files(root: Path, dataset: str) -> list[Path]:
    names = ["mnist", "omniglot"] if dataset == "all" else [dataset]
    return [p for name in names for p in sorted((root / _FOLDERS[name]).glob("parsed-*.npz"))]


def verify(dataset: str = "all", cache=None) -> list[VerifyRow]:
    """Check the cache of ``dataset`` without fetching or changing anything.

    Every source file is hashed and compared with each of its expected checksums (OK, FAILED or
    MISSING).  Every parsed cache present (``parsed-*.npz``, any key: for Omniglot, any holdout) gets
    the checks a load makes (:func:`_read_parsed`: zip CRCs, format, key, the recorded source checksums
    against the expected ones, parameters, shapes, dtype, values, content digest) and must be named
    for its key; it is OK or FAILED (``found`` gives the reason).  A parsed cache cannot vouch for a
    source: a corrupt source is FAILED whatever the parsed cache says, as it is for a load, which
    fetches the source again.
    """
    root = Path(cache) if cache is not None else cache_dir()
    rows = []
    for spec in _specs(dataset):
        path = root.joinpath(*spec.relpath.split("/"))
        found = file_checksums(path, spec.checksums) if path.exists() else {}
        for alg, expected in spec.checksums.items():
            got = found.get(alg, "-")
            status = "MISSING" if not found else ("OK" if got == expected.lower() else "FAILED")
            rows.append(VerifyRow(spec.relpath, alg, expected, got, status))
    for p in _parsed_files(root, dataset):
        key, problem = _check_parsed_file(p)
        found = key if problem is None else f"invalid ({problem})"
        rows.append(VerifyRow(f"{p.parent.name}/{p.name}", "parsed", key, found, "OK" if problem is None else "FAILED"))
    return rows


def _timeout_arg(text: str) -> float:
    try:
        return network_timeout(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m concrete_ref.data",
        description="Fetch and verify the datasets of the Concrete paper (binarized MNIST, Omniglot). "
        f"Cache: {CACHE_ENV} or data/ in the repository; mirror: {MIRROR_ENV}.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="fetch, verify and parse the dataset(s) into the cache")
    p_fetch.add_argument("--dataset", choices=["mnist", "omniglot", "all"], default="all")
    p_fetch.add_argument("--timeout", type=_timeout_arg, default=None,
                         help="network timeout in seconds, in (0, 86400] (default 30, or CONCRETE_DATA_TIMEOUT)")
    p_fetch.add_argument("--omniglot-validation", type=int, default=OMNIGLOT_VALIDATION_SIZE,
                         help="Omniglot training images held out for validation (default 1345, REBAR's)")
    p_verify = sub.add_parser("verify", help="check the cached files' checksums and the parsed caches; exit 1 if one "
                              "FAILED, 2 if one is MISSING")
    p_verify.add_argument("--dataset", choices=["mnist", "omniglot", "all"], default="all")
    args = parser.parse_args(argv)

    if args.command == "fetch" and args.timeout is None:
        try:
            network_timeout()  # CONCRETE_DATA_TIMEOUT, checked before anything else happens
        except ValueError as exc:
            parser.error(str(exc))
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
            for p in _parsed_files(root, name):  # what verify would report FAILED: stale or damaged
                _, problem = _check_parsed_file(p)
                if problem is not None:
                    try:
                        p.unlink()
                        print(f"removed invalid parsed cache {p} ({problem})")
                    except OSError as exc:
                        print(f"could not remove invalid parsed cache {p} ({problem}): {exc}", file=sys.stderr)
                        status = 1
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
