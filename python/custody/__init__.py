"""Verify before load: ML model artifacts checked against a Custody
transparency log from Python.

Every check runs in the Rust verifier the ``custody`` CLI runs, with the
same configuration (``CUSTODY_HOME``, the files ``custody init`` saved, the
``CUSTODY_*`` variables)::

    import custody

    v = custody.pull("acme/model:production", "model-dir")   # verified, then written
    custody.verify("acme/model@1.2", "model-dir")            # raises unless identical
    custody.checkpoint(); custody.history("acme/model")

Loader integrations, importing their framework only when called:
``custody.hf.snapshot``, ``custody.torch.load``,
``custody.safetensors.safe_open``. See docs/python.md.
"""

from ._core import checkpoint, history, pull, resolve, verify
from .errors import CustodyError, InconsistencyError, UsageError, VerificationError
from .results import Artifact, Checkpoint, DirectoryCheck, History, HistoryRow, Verified

__all__ = [
    "pull",
    "verify",
    "resolve",
    "checkpoint",
    "history",
    "CustodyError",
    "VerificationError",
    "InconsistencyError",
    "UsageError",
    "Artifact",
    "Checkpoint",
    "DirectoryCheck",
    "History",
    "HistoryRow",
    "Verified",
]

__version__ = "0.1.0"


def __getattr__(name: str):
    # The integrations load lazily so `import custody` needs no framework.
    if name in ("hf", "torch", "safetensors"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
