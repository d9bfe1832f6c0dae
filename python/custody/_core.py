"""The core calls: thin wrappers over the Rust verifier (``custody._native``),
which runs every check with the ``custody`` CLI's own code.

Configuration is the CLI's: ``home`` (else ``CUSTODY_HOME``, else the XDG
directories) holds what ``custody init`` saved; ``log``, ``policy`` and
``key`` override the saved log URL, policy and actor key as ``--log``,
``--policy`` and ``--key`` do (their ``CUSTODY_*`` variables are read too).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from . import _native
from .errors import EXIT_USAGE, UsageError
from .results import Artifact, Checkpoint, History, Verified

__all__ = ["pull", "verify", "resolve", "checkpoint", "history"]

PathLike = Union[str, "os.PathLike[str]"]


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what}: expected a non-empty string, got {value!r}", exit_code=EXIT_USAGE)
    return value


def _path(value: object, what: str) -> str:
    try:
        p = os.fspath(value)  # type: ignore[arg-type]
    except TypeError:
        raise UsageError(f"{what}: expected a path, got {value!r}", exit_code=EXIT_USAGE) from None
    if not isinstance(p, str) or not p:
        raise UsageError(f"{what}: expected a path, got {value!r}", exit_code=EXIT_USAGE)
    return p


def _opt_path(value: Optional[PathLike], what: str) -> Optional[str]:
    return None if value is None else _path(value, what)


def _statuses(allow_status: Iterable[str]) -> List[str]:
    if isinstance(allow_status, str):
        return [allow_status]
    return [_text(s, "allow_status") for s in allow_status]


def _settings(home: Optional[PathLike], log: Optional[str], policy: Optional[PathLike]) -> dict:
    return dict(
        home=_opt_path(home, "home"),
        log=None if log is None else _text(log, "log"),
        policy=_opt_path(policy, "policy"),
    )


def _transfer(
    call: Callable[..., Dict[str, Any]],
    ref: str,
    path: PathLike,
    what: str,
    home: Optional[PathLike],
    log: Optional[str],
    policy: Optional[PathLike],
    key: Optional[PathLike],
    allow_status: Iterable[str],
    jobs: Optional[int],
) -> Verified:
    """`pull` or `verify` (``call``) with checked arguments."""
    d = call(
        _text(ref, "ref"),
        _path(path, what),
        key=_opt_path(key, "key"),
        allow_status=_statuses(allow_status),
        jobs=jobs,
        **_settings(home, log, policy),
    )
    return Verified._of(d)


def pull(
    ref: str,
    dest: PathLike,
    *,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    allow_status: Iterable[str] = (),
    jobs: Optional[int] = None,
) -> Verified:
    """``custody pull REF -o DEST``: verify ``ref`` against the log, then
    download the file or model directory into ``dest``.

    ``ref`` is ``org/model@version``, ``org/model:tag``, ``sha256:<hex>``
    or ``org/model@sha256:<hex>``. Every byte is checked before anything is
    moved to ``dest``; on any failure nothing is left there. The download
    is logged as an access signed with the actor key (``key``, else the
    home's). ``allow_status`` lets a ``deprecated`` or ``archived`` version
    through, as ``--allow-status`` does.

    Raises ``VerificationError``, ``InconsistencyError`` or ``UsageError``.
    """
    return _transfer(_native.pull, ref, dest, "dest", home, log, policy, key, allow_status, jobs)


def verify(
    ref: str,
    path: PathLike,
    *,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    allow_status: Iterable[str] = (),
    jobs: Optional[int] = None,
) -> Verified:
    """``custody pull REF --verify-only PATH``: check that the file or model
    directory at ``path`` is exactly what the log proves for ``ref``.

    A directory must hold every file of the published manifest with its
    bytes and nothing else (symbolic links are followed, as a loader
    follows them). Checking a directory downloads its manifest, which logs
    an access signed with the actor key.

    Raises ``VerificationError``, ``InconsistencyError`` or ``UsageError``.
    """
    return _transfer(_native.verify, ref, path, "path", home, log, policy, key, allow_status, jobs)


def resolve(
    ref: str,
    *,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    allow_status: Iterable[str] = (),
) -> Artifact:
    """What the log proves for ``ref`` (publish, tag move, authorization,
    current status) without reading any bytes: no access is logged and
    nothing local is checked. Use ``pull`` or ``verify`` before loading.
    """
    d = _native.resolve(
        _text(ref, "ref"), allow_status=_statuses(allow_status), **_settings(home, log, policy)
    )
    return Artifact._of(d)


def checkpoint(
    *,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
) -> Checkpoint:
    """``custody checkpoint``: fetch the log's checkpoint, verify it against
    the policy and prove it consistent with the remembered one, which it
    then replaces if larger."""
    return Checkpoint._of(_native.checkpoint(**_settings(home, log, policy)))


def history(
    name: str,
    *,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    max_accesses: int = 1000,
) -> History:
    """``custody history NAME``: every entry about a model name, proven
    complete and included under one verified checkpoint (at most
    ``max_accesses`` access rows are returned; all are proven)."""
    d = _native.history(_text(name, "name"), max_accesses=max_accesses, **_settings(home, log, policy))
    return History._of(d)
