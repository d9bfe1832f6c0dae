"""Hugging Face: a verified local directory for ``from_pretrained``.

::

    import custody.hf
    from transformers import AutoModel

    path = custody.hf.snapshot("acme/bert:production")
    model = AutoModel.from_pretrained(path)

The directory is the model directory published with ``custody publish``
(the files of a Hugging Face snapshot); it is verified in full, every file
against the published manifest, before its path is returned. No Hugging
Face package is needed to get it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from ._cache import fetch
from ._core import PathLike

__all__ = ["snapshot"]


def snapshot(
    ref: str,
    *,
    local_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    allow_status: Iterable[str] = (),
) -> Path:
    """Return a local directory holding exactly the model directory ``ref``
    names, verified.

    Like ``huggingface_hub.snapshot_download``, but the directory comes
    from a Custody log and every file was checked against the manifest the
    log proves for ``ref``. With ``local_dir`` the model lives there;
    otherwise in the cache (``cache_dir``, ``CUSTODY_CACHE_DIR`` or
    ``~/.cache/custody/artifacts``) under its digest. An existing copy is
    verified again in full; a modified one raises ``VerificationError`` and
    is not returned.
    """
    v = fetch(
        ref,
        cache_dir=cache_dir,
        local_dir=local_dir,
        home=home,
        log=log,
        policy=policy,
        key=key,
        allow_status=allow_status,
        directory=True,
    )
    return v.path
