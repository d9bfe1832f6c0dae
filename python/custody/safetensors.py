"""safetensors: ``safe_open`` of a verified file.

::

    import custody.safetensors

    with custody.safetensors.safe_open(
        "acme/llm@2", framework="numpy", filename="model-00001-of-00002.safetensors"
    ) as f:
        w = f.get_tensor("embed.weight")

The artifact (a single ``.safetensors`` file, or a model directory and the
shard ``filename`` in it) is verified before the file is opened.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from ._cache import fetch, member
from ._core import PathLike

__all__ = ["safe_open"]


def safe_open(
    ref: str,
    framework: str = "numpy",
    device: str = "cpu",
    *,
    filename: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    home: Optional[PathLike] = None,
    log: Optional[str] = None,
    policy: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    allow_status: Iterable[str] = (),
) -> Any:
    """Verify ``ref`` then return ``safetensors.safe_open(path, framework,
    device)`` on it (a context manager, as safetensors returns)."""
    from safetensors import safe_open as open_verified  # lazily

    v = fetch(
        ref, cache_dir=cache_dir, home=home, log=log, policy=policy, key=key, allow_status=allow_status
    )
    return open_verified(str(member(v, filename)), framework=framework, device=device)
