"""PyTorch: ``torch.load`` of a verified artifact, with ``weights_only=True``.

::

    import custody.torch

    state = custody.torch.load("acme/resnet@3", map_location="cpu")

The file is verified first (``custody.pull`` into the cache, or a full
check of the cached copy); only then is it handed to ``torch.load``, always
with ``weights_only=True``: verification proves *which* bytes were
published and by whom, ``weights_only`` keeps even a published pickle from
running code while it loads.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from ._cache import fetch, member
from ._core import PathLike
from .errors import EXIT_USAGE, UsageError

__all__ = ["load"]


def load(
    ref: str,
    *,
    filename: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    allow_status: Iterable[str] = (),
    **torch_kwargs: Any,
) -> Any:
    """Verify ``ref`` then return ``torch.load(path, weights_only=True,
    **torch_kwargs)``.

    For a model directory, ``filename`` names the file inside it. Passing
    ``weights_only=False`` is refused (``UsageError``): the point of this
    function is a load that cannot run code.
    """
    if torch_kwargs.pop("weights_only", True) is not True:
        raise UsageError("custody.torch.load always loads with weights_only=True", exit_code=EXIT_USAGE)
    import torch  # lazily: the core package needs no framework

    v = fetch(
        ref, cache_dir=cache_dir, home=home, log=log, policy=policy, key=key, allow_status=allow_status
    )
    return torch.load(str(member(v, filename)), weights_only=True, **torch_kwargs)
