"""Typed results of ``custody`` calls, spelled as the CLI's ``--output json``
spells them (docs/verifier.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple

__all__ = ["Checkpoint", "Artifact", "DirectoryCheck", "Verified", "HistoryRow", "History"]


@dataclass(frozen=True)
class Checkpoint:
    """A log checkpoint that satisfied the policy (log signature, witness
    quorum) and was proven consistent with the one remembered before."""

    origin: str
    size: int
    #: Root hash, standard base64 as in the signed note.
    root: str
    #: Policy witnesses whose cosignatures verified.
    cosigners: Tuple[str, ...]
    #: The signed note verbatim, with every cosignature.
    note: str

    @classmethod
    def _of(cls, d: Mapping[str, Any]) -> "Checkpoint":
        return cls(d["origin"], d["size"], d["root"], tuple(d["cosigners"]), d["note"])


@dataclass(frozen=True)
class Artifact:
    """What the log proves for a reference: the publish, the tag move, the
    publisher's authorization and the current status, all under one
    checkpoint."""

    reference: str
    name: str
    version: str
    #: ``sha256:<hex>`` of the artifact (a directory's manifest).
    digest: str
    size: int
    media_type: str
    publisher: str
    publish_index: int
    #: Leaf index of the tag move, for a ``name:tag`` reference.
    tag_index: Optional[int]
    #: Every version checked, with its status proven current.
    statuses: Mapping[str, str]
    checkpoint: Checkpoint
    #: Whether it is a model directory (its digest is a manifest's).
    is_directory: bool

    @staticmethod
    def _fields(d: Mapping[str, Any]) -> dict:
        return dict(
            reference=d["reference"],
            name=d["name"],
            version=d["version"],
            digest=d["digest"],
            size=d["size"],
            media_type=d["media_type"],
            publisher=d["publisher"],
            publish_index=d["publish_index"],
            tag_index=d["tag_index"],
            statuses=dict(d["statuses"]),
            checkpoint=Checkpoint._of(d["checkpoint"]),
            is_directory=bool(d["is_directory"]) if "is_directory" in d else d["directory"] is not None,
        )

    @classmethod
    def _of(cls, d: Mapping[str, Any]) -> "Artifact":
        return cls(**Artifact._fields(d))


@dataclass(frozen=True)
class DirectoryCheck:
    """What a directory pull or check covered."""

    #: Files (an OpenSSF signature file included).
    files: int
    bytes: int
    #: The access entry the manifest and its files were fetched under.
    access_index: int


@dataclass(frozen=True)
class Verified(Artifact):
    """An artifact on disk that verified: ``path`` holds exactly the
    published bytes (every file of a model directory, nothing else)."""

    path: Path
    #: Whether this call wrote ``path`` (``pull``) or checked it (``verify``).
    written: bool
    #: For a model directory, what was checked.
    directory: Optional[DirectoryCheck]

    @classmethod
    def _of(cls, d: Mapping[str, Any]) -> "Verified":
        directory = d["directory"]
        return cls(
            **Artifact._fields(d),
            path=Path(d["path"]),
            written=d["written"],
            directory=DirectoryCheck(**directory) if directory is not None else None,
        )


@dataclass(frozen=True)
class HistoryRow:
    """One entry about a name, proven included under the history's checkpoint."""

    index: int
    #: The statement's time (UTC).
    time: str
    #: The log's receive time, ms since the epoch.
    received_ms: int
    actor: str
    #: ``publish``, ``tag``, ``promote``, ``access``, ...
    event: str
    name: Optional[str]
    version: Optional[str]
    detail: str
    reason: str


@dataclass(frozen=True)
class History:
    """A name's entries, proven complete by its committed entries chain."""

    name: str
    checkpoint: Checkpoint
    rows: Tuple[HistoryRow, ...]

    @classmethod
    def _of(cls, d: Mapping[str, Any]) -> "History":
        rows = tuple(HistoryRow(**r) for r in d["rows"])
        return cls(d["name"], Checkpoint._of(d["checkpoint"]), rows)
