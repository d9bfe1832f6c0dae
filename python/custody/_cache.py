"""A local cache of verified artifacts, one entry per published digest, for
the loader integrations: an entry is pulled once and verified again, in
full, every time it is handed over."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from ._core import PathLike, _path, pull, resolve, verify
from .errors import EXIT_USAGE, UsageError
from .results import Verified


def cache_root(cache_dir: Optional[PathLike] = None) -> Path:
    """``cache_dir``, else ``$CUSTODY_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/custody/artifacts`` (``~/.cache/custody/artifacts``)."""
    if cache_dir is not None:
        return Path(_path(cache_dir, "cache_dir"))
    env = os.environ.get("CUSTODY_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "custody" / "artifacts"


def fetch(
    ref: str,
    *,
    cache_dir: Optional[PathLike] = None,
    local_dir: Optional[PathLike] = None,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    allow_status: Iterable[str] = (),
    directory: Optional[bool] = None,
) -> Verified:
    """The verified local copy of ``ref``: in ``local_dir`` if given, else in
    the cache under the digest the log proves for ``ref``. An existing
    copy is verified (every byte); a missing one is pulled. Only a path
    that verified is returned. With ``directory`` set, an artifact of the
    other kind is refused before anything is downloaded."""
    settings = dict(home=home, log=log, policy=policy)
    allow_status = list(allow_status)
    artifact = resolve(ref, allow_status=allow_status, **settings)
    if directory is not None and artifact.is_directory != directory:
        kind = "a single file, not a model directory" if directory else "a model directory, not a file"
        raise UsageError(f"{ref} is {kind}", exit_code=EXIT_USAGE)
    if local_dir is None:
        root = cache_root(cache_dir)
        root.mkdir(parents=True, exist_ok=True)
        dest = root / artifact.digest.replace(":", "-")
    else:
        dest = Path(_path(local_dir, "local_dir"))
    exists = dest.is_file() or (dest.is_dir() and any(dest.iterdir()))
    call = verify if exists else pull
    return call(ref, dest, key=key, allow_status=allow_status, **settings)


def member(v: Verified, filename: Optional[str]) -> Path:
    """The file to open in a verified artifact: the file itself, or
    ``filename`` inside a verified model directory (which must stay inside
    it)."""
    if not v.is_directory:
        if filename is not None:
            raise UsageError(f"{v.reference} is a single file; filename= is for model directories", exit_code=EXIT_USAGE)
        return v.path
    if not filename:
        raise UsageError(f"{v.reference} is a model directory: name the file to open with filename=", exit_code=EXIT_USAGE)
    root = v.path.resolve()
    target = (root / filename).resolve()
    if root not in target.parents or not target.is_file():
        raise UsageError(f"{filename!r} is not a file of {v.reference}", exit_code=EXIT_USAGE)
    return target
