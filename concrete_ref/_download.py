"""Fetch a file from a mirror or a public URL, verify its content, and cache it atomically.

The machinery behind :mod:`concrete_ref.data` (which names the files and parses them).  One job:
make ``<cache>/<relpath>`` exist with content whose checksums are the expected ones, or say exactly
why that was impossible.

Where files are looked for, in order
------------------------------------
1. The cache: ``<cache>/<relpath>``.  A cached file is re-verified before use; a corrupt, truncated or
   wrong one is reported (a :class:`DataIntegrityWarning` with the expected and found checksums),
   deleted and fetched again.
2. The mirror named by the environment variable ``CONCRETE_DATA_MIRROR``: either a local directory,
   or a base URL (``http://``, ``https://`` or ``file://``), holding the files under the same relative
   names as the cache (``binarized_mnist/<file>``, ``omniglot/chardata.mat``).  A relative directory is
   resolved against the current working directory first and then against the repository root, so
   a relative setting such as ``CONCRETE_DATA_MIRROR=../mirror`` works both from the repository root and from
   ``chapters/`` (where nbval runs the notebooks).
3. The public URLs of the file, in the order listed by :mod:`concrete_ref.data`.

Every copy or download goes to a temporary file *in the cache directory*, is verified there, and is
renamed into place (``os.replace``, atomic on one file system) only if every checksum matches, so a
half-written or wrong file never takes the cached name, and concurrent processes cannot see one.
The temporary file is removed on every failure, interruptions included.

Where the cache is
------------------
``CONCRETE_DATA_DIR`` if set; otherwise ``data/`` at the repository root when the package runs from a
checkout (an editable install, ``pip install -e .``); otherwise a per-user cache directory,
``$XDG_CACHE_HOME/concrete_book`` (by default ``~/.cache/concrete_book``).

Checksums
---------
``sha256`` and ``md5`` are the usual digests; ``git-blob`` is the id git gives the file's content,
``sha1(b"blob <size>\\0" + content)``, which can be read from a public repository without downloading
the file.  A file must match *every* checksum listed for it.

Network
-------
``urllib`` with a socket timeout (default 30 s, or ``CONCRETE_DATA_TIMEOUT`` seconds), which bounds the
connection and every read, so a stalled transfer fails instead of hanging.  A response shorter than
its ``Content-Length`` is rejected as truncated.  Nothing here needs more than the standard library
(``tqdm`` draws the progress bar when it is installed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

__all__ = [
    "DEFAULT_TIMEOUT",
    "DataIntegrityWarning",
    "DataUnavailableError",
    "FileSpec",
    "MIRROR_ENV",
    "CACHE_ENV",
    "TIMEOUT_ENV",
    "cache_dir",
    "atomic_write",
    "ensure_file",
    "file_checksums",
    "mismatches",
    "repo_root",
    "resolve_mirror",
]

MIRROR_ENV = "CONCRETE_DATA_MIRROR"
CACHE_ENV = "CONCRETE_DATA_DIR"
TIMEOUT_ENV = "CONCRETE_DATA_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 20
_USER_AGENT = "concrete-book-data-loader/0.1 (+https://arxiv.org/abs/1611.00712)"
_ALGORITHMS = ("sha256", "md5", "git-blob")


class DataUnavailableError(RuntimeError):
    """No source could provide a verified copy of a file.

    ``attempts`` is the list of ``(source, reason)`` pairs, one per source tried, in order; the
    message lists them and says how to point ``CONCRETE_DATA_MIRROR`` at a local copy.
    """

    def __init__(self, message: str, attempts: Sequence[tuple[str, str]] = (), relpath: str = ""):
        super().__init__(message)
        self.attempts = list(attempts)
        self.relpath = relpath


class DataIntegrityWarning(UserWarning):
    """A cached file (or parsed cache) failed verification and is being rebuilt."""


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One file the loader can fetch.

    relpath:   path under the cache and under a mirror, with ``/`` separators.
    checksums: ``{algorithm: hex digest}`` with algorithms from ``sha256``, ``md5``, ``git-blob``;
               every one must match.
    urls:      public URLs to try, in order, after the mirror.
    size:      the size in bytes when known (reported; the checksums decide).
    title:     a human name for messages.
    """

    relpath: str
    checksums: Mapping[str, str]
    urls: tuple = ()
    size: int | None = None
    title: str = ""

    def __post_init__(self):
        unknown = set(self.checksums) - set(_ALGORITHMS)
        if unknown or not self.checksums:
            raise ValueError(f"checksums must be a non-empty subset of {_ALGORITHMS}; got {sorted(self.checksums)}")


# --------------------------------------------------------------------------------------- locations
def repo_root() -> Path | None:
    """The checkout this package runs from (the folder with ``_config.yml``, ``pyproject.toml`` and
    ``concrete_ref/``), or ``None`` when the package is installed elsewhere (e.g. site-packages)."""
    parent = Path(__file__).resolve().parent.parent
    if (parent / "pyproject.toml").is_file() and (parent / "_config.yml").is_file() and (parent / "concrete_ref").is_dir():
        return parent
    return None


def cache_dir() -> Path:
    """Where verified files and parsed arrays are cached (see the module docstring for the order)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    if root is not None:
        return root / "data"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "concrete_book"


def _is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme.lower() in ("http", "https", "file")


def resolve_mirror(value: str | None = None) -> tuple[str | None, list[str]]:
    """Interpret ``CONCRETE_DATA_MIRROR`` (or ``value``).

    Returns ``(mirror, notes)``: ``mirror`` is a base URL or an absolute directory path (``None`` when
    unset or not found); ``notes`` explains what was tried, for error messages.  A relative directory
    is tried against the working directory first, then against the repository root.
    """
    if value is None:
        value = os.environ.get(MIRROR_ENV)
    if not value:
        return None, [f"{MIRROR_ENV} is not set"]
    value = value.strip()
    if _is_url(value):
        return value, []
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path]
    root = repo_root()
    if not path.is_absolute() and root is not None:
        candidates.append(root / path)
    tried = []
    for cand in candidates:
        cand = Path(os.path.normpath(cand))
        if cand.is_dir():
            return str(cand), []
        if str(cand) not in tried:
            tried.append(str(cand))
    return None, [f"{MIRROR_ENV}={value!r}: no such directory (tried {', '.join(tried)})"]


def _timeout(timeout: float | None) -> float:
    if timeout is not None:
        return float(timeout)
    env = os.environ.get(TIMEOUT_ENV)
    return float(env) if env else DEFAULT_TIMEOUT


# --------------------------------------------------------------------------------------- checksums
def file_checksums(path, algorithms: Iterable[str] = ("sha256",)) -> dict:
    """Hex digests of the file at ``path`` for the given algorithms, in one pass over the file."""
    path = Path(path)
    size = path.stat().st_size
    hashers = {}
    for alg in algorithms:
        if alg == "git-blob":
            h = hashlib.sha1()
            h.update(b"blob %d\0" % size)
            hashers[alg] = h
        elif alg in ("sha256", "md5"):
            hashers[alg] = hashlib.new(alg)
        else:
            raise ValueError(f"unknown checksum algorithm {alg!r}")
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                break
            for h in hashers.values():
                h.update(block)
    return {alg: h.hexdigest() for alg, h in hashers.items()}


def mismatches(spec: FileSpec, path) -> list[str]:
    """``[]`` if the file matches every checksum of ``spec``, else one line per mismatch."""
    found = file_checksums(path, spec.checksums)
    size = Path(path).stat().st_size
    out = [f"{alg}: expected {spec.checksums[alg]}, found {found[alg]}" for alg in spec.checksums
           if found[alg] != spec.checksums[alg].lower()]
    if out and spec.size is not None and size != spec.size:
        out.append(f"size: expected {spec.size} bytes, found {size}")
    return out


# --------------------------------------------------------------------------------------- transfer
def _progress_bar(total, desc, progress):
    """A tqdm bar; ``progress=None`` lets tqdm decide (shown on a terminal only)."""
    if progress is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but the loader must not need it
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=None if progress is None else False, leave=False, file=sys.stderr)


def _copy_stream(src, dst, total, desc, progress) -> int:
    bar = _progress_bar(total, desc, progress)
    n = 0
    try:
        while True:
            block = src.read(_CHUNK)
            if not block:
                break
            dst.write(block)
            n += len(block)
            if bar is not None:
                bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    return n


def _fetch_to(source: str, dst, timeout: float, progress, desc: str) -> None:
    """Copy ``source`` (a local path or a URL) into the open binary file ``dst``; raise on failure."""
    if not _is_url(source):
        total = os.path.getsize(source)
        with open(source, "rb") as src:
            n = _copy_stream(src, dst, total, desc, progress)
        if n != total:
            raise OSError(f"truncated copy: read {n} of {total} bytes")
        return
    request = urllib.request.Request(source, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        n = _copy_stream(response, dst, total, desc, progress)
    if total is not None and n != total:
        raise OSError(f"truncated download: received {n} of {total} bytes (Content-Length)")
    if n == 0:
        raise OSError("empty response")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"URLError: {exc.reason}"
    if isinstance(exc, FileNotFoundError):
        return "not found"
    return f"{type(exc).__name__}: {exc}"


def _sources(spec: FileSpec, mirror: str | None, urls: Sequence[str] | None):
    """The ``(label, location)`` pairs to try, mirror first, and notes on skipped mirrors."""
    out = []
    resolved, notes = resolve_mirror(mirror)
    if resolved is not None:
        if _is_url(resolved):
            out.append((f"mirror {resolved.rstrip('/')}/{spec.relpath}", resolved.rstrip("/") + "/" + spec.relpath))
        else:
            loc = os.path.join(resolved, *spec.relpath.split("/"))
            out.append((f"mirror {loc}", loc))
    for url in spec.urls if urls is None else urls:
        out.append((url, url))
    return out, notes


def _fix_hint(spec: FileSpec, target: Path) -> str:
    sums = ", ".join(f"{alg} {digest}" for alg, digest in spec.checksums.items())
    return (
        f"To fix this, download the file on a machine with internet access (from a URL above), put it\n"
        f"in a mirror directory as <mirror>/{spec.relpath}, and point {MIRROR_ENV} at that directory:\n"
        f"    export {MIRROR_ENV}=/path/to/mirror\n"
        f"(an http://, https:// or file:// base URL serving the same layout works too), or put the file\n"
        f"directly at {target}.  It is checked by content: {sums}."
    )


def ensure_file(
    spec: FileSpec,
    *,
    cache: Path | str | None = None,
    mirror: str | None = None,
    urls: Sequence[str] | None = None,
    timeout: float | None = None,
    progress: bool | None = None,
) -> Path:
    """Return the path of a verified copy of ``spec`` in the cache, fetching it if needed.

    ``mirror`` overrides ``CONCRETE_DATA_MIRROR``; ``urls`` overrides ``spec.urls`` (``()`` disables
    downloads); ``timeout`` the network timeout in seconds; ``progress`` shows a tqdm bar (``None``:
    on a terminal only).  Raises :class:`DataUnavailableError` listing every source tried and why it
    failed; no partial file is left behind.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    target = cache.joinpath(*spec.relpath.split("/"))
    if target.exists():
        bad = mismatches(spec, target)
        if not bad:
            return target
        warnings.warn(
            f"cached file {target} failed verification and will be fetched again:\n  " + "\n  ".join(bad),
            DataIntegrityWarning, stacklevel=2)
        target.unlink()
    created = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    sources, notes = _sources(spec, mirror, urls)
    attempts = [("mirror", note) for note in notes]
    wait = _timeout(timeout)
    for label, location in sources:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as dst:
                _fetch_to(location, dst, wait, progress, desc=target.name)
            bad = mismatches(spec, tmp)
            if bad:
                attempts.append((label, "checksum mismatch: " + "; ".join(bad)))
                continue
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache is readable like any downloaded file
            os.replace(tmp, target)
            return target
        except Exception as exc:  # OSError (URLError, HTTPError, timeouts), http.client errors, bad URLs
            attempts.append((label, _reason(exc)))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    for folder in created:  # leave no trace of a failed fetch, not even an empty folder
        try:
            folder.rmdir()
        except OSError:
            break
    name = spec.title or spec.relpath
    lines = [f"could not obtain {spec.relpath} ({name}) from any source; tried {len(attempts)}:"]
    lines += [f"  {i}. {label}: {reason}" for i, (label, reason) in enumerate(attempts, 1)]
    lines.append("No partial file was kept.\n" + _fix_hint(spec, target))
    raise DataUnavailableError("\n".join(lines), attempts, spec.relpath)


def atomic_write(path: Path, write) -> None:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

