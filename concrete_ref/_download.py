"""Fetch a file from a mirror or a public URL, verify its content, and cache it atomically.

The machinery behind :mod:`concrete_ref.data` (which names the files and parses them).  One job:
make ``<cache>/<relpath>`` exist with content whose checksums are the expected ones, or say exactly
why that was impossible.

Where files are looked for, in order
------------------------------------
1. The cache: ``<cache>/<relpath>``.  A cached file is re-verified (every checksum, over its whole
   content) each time it is asked for; a corrupt, truncated or wrong one is reported (a
   :class:`DataIntegrityWarning` with the expected and found checksums), deleted and fetched again.
2. The mirror named by the environment variable ``CONCRETE_DATA_MIRROR``: either a local directory,
   or a base URL (``http://``, ``https://`` or ``file://``), holding the files under the same relative
   names as the cache (``binarized_mnist/<file>``, ``omniglot/chardata.mat``).  A relative directory is
   resolved against the current working directory first and then against the repository root, so
   a relative setting such as ``CONCRETE_DATA_MIRROR=../mirror`` works both from the repository root and from
   ``chapters/`` (where nbval runs the notebooks).
3. The public URLs of the file, in the order listed by :mod:`concrete_ref.data`.

Every copy or download goes to a temporary file *in the cache directory*,
``.<name>.<random>.part``, is verified there, and is renamed into place (``os.replace``, atomic on one
file system) only if every checksum matches, so a half-written or wrong file never takes the cached
name, and concurrent processes cannot see one.  The temporary file is removed on every failure,
interruptions included.  A process that is killed (``SIGKILL``, power loss) cannot remove it; the next
:func:`ensure_file` for that folder does (:func:`remove_stale_parts`).  The writer holds an exclusive
``flock`` on its temporary file until it is renamed or removed, so a ``.part`` file whose lock can be
taken belongs to a dead process and is deleted, while one still being written by another process is
left alone.  (Where ``flock`` is unavailable, a ``.part`` file is deleted only when it has not been
modified for a day.)

Read-only caches
----------------
A cache whose files are present and verified is only read: a load writes nothing.  When a write *is*
needed (a file is missing or failed verification) and the folder cannot be written,
:class:`CacheNotWritableError` names the folder and says how to fix it (make it writable, or set
``CONCRETE_DATA_DIR`` to a writable folder).  Callers that write only to speed up later runs (the
parsed-array cache of :mod:`concrete_ref.data`) catch that error and warn instead
(:class:`CacheWriteWarning`).

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
connection and every read, so a stalled transfer fails instead of hanging.  The timeout must be a
finite number of seconds greater than 0 and at most 86400 (one day); anything else (text, 0, a
negative number, ``inf``, ``nan``) is a ``ValueError`` naming ``CONCRETE_DATA_TIMEOUT`` (or the
``timeout`` argument) and that range, raised whenever a file is asked for, whether or not a download
turns out to be needed.  An empty ``CONCRETE_DATA_TIMEOUT`` means unset.  A response shorter than
its ``Content-Length`` is rejected as truncated.  Nothing here needs more than the standard library
(``tqdm`` draws the progress bar when it is installed).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import math
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

try:  # POSIX: temporary files are locked by their writer, so stale ones can be told from live ones
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "CacheNotWritableError",
    "CacheWriteWarning",
    "DataIntegrityWarning",
    "DataUnavailableError",
    "FileSpec",
    "MIRROR_ENV",
    "CACHE_ENV",
    "PART_SUFFIX",
    "TIMEOUT_ENV",
    "cache_dir",
    "atomic_write",
    "ensure_file",
    "file_checksums",
    "mismatches",
    "network_timeout",
    "remove_stale_parts",
    "repo_root",
    "resolve_mirror",
]

MIRROR_ENV = "CONCRETE_DATA_MIRROR"
CACHE_ENV = "CONCRETE_DATA_DIR"
TIMEOUT_ENV = "CONCRETE_DATA_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 86400.0  # one day; far beyond any useful socket timeout, and within what sockets accept
PART_SUFFIX = ".part"  # temporary files are ".<name>.<random>.part" in the folder of <name>
_STALE_AGE = MAX_TIMEOUT  # without flock: a .part file untouched this long (s) is taken to be dead
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


class CacheNotWritableError(DataUnavailableError):
    """A file had to be written into the cache (it is missing or failed verification) and the cache
    folder cannot be written.  ``folder`` is that folder; the message names it and how to fix it."""

    def __init__(self, message: str, folder: Path, relpath: str = ""):
        super().__init__(message, (), relpath)
        self.folder = Path(folder)


class DataIntegrityWarning(UserWarning):
    """A cached file (or parsed cache) failed verification and is being rebuilt."""


class CacheWriteWarning(UserWarning):
    """An optional write into the cache (one that only speeds up later runs) was impossible."""


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


def network_timeout(timeout: float | str | None = None) -> float:
    """The network timeout in seconds: ``timeout`` if given, else ``CONCRETE_DATA_TIMEOUT`` if set (and
    not empty), else 30.

    Accepted: a finite number greater than 0 and at most :data:`MAX_TIMEOUT` (86400 s, one day).
    Anything else (text, 0, negative, ``inf``, ``nan``, more than a day) raises ``ValueError`` naming
    the argument or the environment variable, the value and the accepted range.
    """
    if timeout is not None:
        name, raw = "timeout", timeout
    else:
        raw = os.environ.get(TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_TIMEOUT
        name = TIMEOUT_ENV
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        shown = f"{name}={raw!r}" if name == TIMEOUT_ENV else f"timeout={raw!r}"
        raise ValueError(
            f"{shown} is not a valid network timeout: expected a number of seconds greater than 0 and at "
            f"most {MAX_TIMEOUT:g} (the range (0, {MAX_TIMEOUT:g}]; default {DEFAULT_TIMEOUT:g})")
    return value


_timeout = network_timeout  # the name used before network_timeout was public


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


# ------------------------------------------------------------------------------- temporary files
def _is_permission_error(exc: BaseException) -> bool:
    return isinstance(exc, PermissionError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS))


def _not_writable(folder: Path, exc: OSError, what: str, relpath: str = "") -> CacheNotWritableError:
    reason = exc.strerror or str(exc)
    return CacheNotWritableError(
        f"the cache folder {folder} is not writable ({reason}), and {what} must be written there.\n"
        f"Make {folder} writable, or set {CACHE_ENV} to a writable folder (verified files already in the\n"
        f"cache can be copied there, or served from it as a mirror with {MIRROR_ENV}).", folder, relpath)


def _try_lock(fd: int) -> bool | None:
    """Take an exclusive, non-blocking ``flock`` on ``fd``: True if taken, False if another open file
    holds it, None if locking is unavailable here (no ``fcntl``, or a file system without locks)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _names_open_file(path, fd: int) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except OSError:
        return False


def remove_stale_parts(folder) -> list[Path]:
    """Delete the temporary ``.*.part`` files in ``folder`` that no live process is writing (left by a
    killed download or a killed cache write); return the paths deleted.

    A writer holds an exclusive ``flock`` on its temporary file for as long as it exists, so a file
    whose lock can be taken is dead; a locked one is left alone.  Where locks are unavailable, only a
    file not modified for :data:`MAX_TIMEOUT` seconds is deleted.  Files that cannot be deleted (a
    read-only folder) are left silently; nothing else in the folder is touched.
    """
    removed = []
    try:
        candidates = [p for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(PART_SUFFIX)]
    except OSError:
        return removed
    for path in candidates:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:  # gone meanwhile, a link, or unreadable
            continue
        try:
            locked = _try_lock(fd)
            if locked is False:
                continue  # a live writer holds it
            if locked is None and time.time() - os.fstat(fd).st_mtime < _STALE_AGE:
                continue
            if _names_open_file(path, fd):  # still the file we locked
                os.unlink(path)
                removed.append(path)
        except OSError:  # read-only folder, or removed by someone else first
            pass
        finally:
            os.close(fd)
    return removed


class _Part:
    """A new temporary file ``.<name>.<random>.part`` beside ``target``, locked by this process (see
    :func:`remove_stale_parts`) until :meth:`commit` renames it onto ``target`` or :meth:`discard`
    deletes it.  Raises :class:`CacheNotWritableError` when the folder cannot be written."""

    def __init__(self, target: Path, relpath: str = ""):
        folder = target.parent
        for _ in range(100):
            try:
                fd, path = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PART_SUFFIX, dir=folder)
            except OSError as exc:
                if _is_permission_error(exc):
                    raise _not_writable(folder, exc, f"{target.name} (through a temporary file)", relpath) from exc
                raise
            # a cleaner in another process may have taken and deleted the new file before we locked it
            if _try_lock(fd) is not False and _names_open_file(path, fd):
                self.fd, self.path = fd, path
                return
            os.close(fd)
        raise OSError(f"could not create a temporary file in {folder}")  # pragma: no cover

    def open(self):
        """A binary file object on the temporary file (closing it keeps the lock)."""
        return os.fdopen(os.dup(self.fd), "wb")

    def commit(self, target: Path) -> None:
        os.chmod(self.path, 0o644)  # mkstemp creates 0600; a cache is readable like any downloaded file
        os.replace(self.path, target)
        self.path = None

    def discard(self) -> None:
        try:
            if self.path is not None and os.path.exists(self.path):
                os.unlink(self.path)  # still under our lock
        finally:
            os.close(self.fd)


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

    What is checked, every call: the network timeout is valid (:func:`network_timeout`, whether or not
    a download follows); a cached file matches *every* checksum of ``spec`` over its whole content
    (else a :class:`DataIntegrityWarning` with expected and found checksums, and it is fetched again);
    a fetched copy matches them before it takes the cached name.  Dead temporary files in the target's
    folder are removed first (:func:`remove_stale_parts`).  A verified cached file is only read.

    ``mirror`` overrides ``CONCRETE_DATA_MIRROR``; ``urls`` overrides ``spec.urls`` (``()`` disables
    downloads); ``timeout`` the network timeout in seconds; ``progress`` shows a tqdm bar (``None``:
    on a terminal only).  Raises :class:`DataUnavailableError` listing every source tried and why it
    failed, or :class:`CacheNotWritableError` (naming the folder) when the file must be written and the
    cache folder cannot be; no partial file is left behind.
    """
    wait = network_timeout(timeout)
    cache = Path(cache) if cache is not None else cache_dir()
    target = cache.joinpath(*spec.relpath.split("/"))
    if target.parent.is_dir():
        remove_stale_parts(target.parent)
    if target.exists():
        bad = mismatches(spec, target)
        if not bad:
            return target
        warnings.warn(
            f"cached file {target} failed verification and will be fetched again:\n  " + "\n  ".join(bad),
            DataIntegrityWarning, stacklevel=2)
        try:
            target.unlink()
        except OSError as exc:
            if _is_permission_error(exc):
                raise _not_writable(target.parent, exc, f"a verified copy of {spec.relpath} (the cached one failed "
                                    "verification)", spec.relpath) from exc
            raise
    created = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if _is_permission_error(exc):
            raise _not_writable(target.parent, exc, f"{spec.relpath} (the folder must first be created)",
                                spec.relpath) from exc
        raise
    sources, notes = _sources(spec, mirror, urls)
    attempts = [("mirror", note) for note in notes]
    for label, location in sources:
        part = _Part(target, spec.relpath)
        try:
            with part.open() as dst:
                _fetch_to(location, dst, wait, progress, desc=target.name)
            bad = mismatches(spec, part.path)
            if bad:
                attempts.append((label, "checksum mismatch: " + "; ".join(bad)))
                continue
            part.commit(target)
            return target
        except Exception as exc:  # OSError (URLError, HTTPError, timeouts), http.client errors, bad URLs
            attempts.append((label, _reason(exc)))
        finally:
            part.discard()
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
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it into place.

    The temporary file is locked and removed on failure like a download's (dead ones in the folder are
    removed first); raises :class:`CacheNotWritableError`, naming the folder, if it cannot be written.
    """
    path = Path(path)
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if _is_permission_error(exc):
                raise _not_writable(path.parent, exc, f"{path.name} (the folder must first be created)") from exc
            raise
    remove_stale_parts(path.parent)
    part = _Part(path)
    try:
        with part.open() as f:
            write(f)
        part.commit(path)
    finally:
        part.discard()

