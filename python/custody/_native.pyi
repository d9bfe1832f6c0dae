# Type stubs of the Rust extension (python/src/lib.rs). Results are plain
# dicts; custody/results.py gives them their types.
from typing import Any, Dict, List, Optional

__version__: str

def pull(
    reference: str,
    dest: str,
    *,
    home: Optional[str] = ...,
    log: Optional[str] = ...,
    policy: Optional[str] = ...,
    key: Optional[str] = ...,
    allow_status: List[str] = ...,
    jobs: Optional[int] = ...,
) -> Dict[str, Any]: ...
def verify(
    reference: str,
    path: str,
    *,
    home: Optional[str] = ...,
    log: Optional[str] = ...,
    policy: Optional[str] = ...,
    key: Optional[str] = ...,
    allow_status: List[str] = ...,
    jobs: Optional[int] = ...,
) -> Dict[str, Any]: ...
def resolve(
    reference: str,
    *,
    home: Optional[str] = ...,
    log: Optional[str] = ...,
    policy: Optional[str] = ...,
    allow_status: List[str] = ...,
) -> Dict[str, Any]: ...
def checkpoint(
    *, home: Optional[str] = ..., log: Optional[str] = ..., policy: Optional[str] = ...
) -> Dict[str, Any]: ...
def history(
    name: str,
    *,
    home: Optional[str] = ...,
    log: Optional[str] = ...,
    policy: Optional[str] = ...,
    max_accesses: int = ...,
) -> Dict[str, Any]: ...
