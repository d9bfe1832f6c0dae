"""Errors of the ``custody`` package, one class per exit-code class of the
``custody`` CLI (docs/verifier.md), each carrying the message the CLI prints.

``VerificationError`` (exit 2)
    Something did not verify: a signature, proof, policy quorum, digest,
    authorization or status. Nothing was handed over.
``InconsistencyError`` (exit 3, a ``VerificationError``)
    The log showed a checkpoint inconsistent with one this client verified
    before (a split view or rewritten history); ``evidence`` is the report
    written under the state directory.
``UsageError`` (exit 1 or 64)
    The check could not be made: network, local files or configuration
    (exit 1, e.g. no ``custody init`` yet, the log unreachable or refusing),
    or bad arguments (exit 64).

Catching ``VerificationError`` therefore also catches an inconsistency: a
loader that refuses unverified models refuses forked logs too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

__all__ = [
    "CustodyError",
    "VerificationError",
    "InconsistencyError",
    "UsageError",
    "EXIT_FAILURE",
    "EXIT_VERIFICATION",
    "EXIT_INCONSISTENT",
    "EXIT_USAGE",
]

#: Not a verdict: I/O, network, configuration, a refusal by the log.
EXIT_FAILURE = 1
#: Something did not verify.
EXIT_VERIFICATION = 2
#: The log is inconsistent with the remembered checkpoint (evidence written).
EXIT_INCONSISTENT = 3
#: Bad arguments.
EXIT_USAGE = 64


class CustodyError(Exception):
    """Base of every error this package raises.

    ``message`` is the CLI's message, ``exit_code`` the code the CLI exits
    with for the same failure; ``status`` and ``code`` are the log's HTTP
    status and error code when the log refused a request.
    """

    default_exit_code = EXIT_FAILURE

    def __init__(
        self,
        message: str,
        *,
        exit_code: Optional[int] = None,
        evidence: Union[str, Path, None] = None,
        status: Optional[int] = None,
        code: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = self.default_exit_code if exit_code is None else exit_code
        self.evidence = Path(evidence) if evidence is not None else None
        self.status = status
        self.code = code


class VerificationError(CustodyError):
    """Something did not verify; nothing was handed over (exit code 2)."""

    default_exit_code = EXIT_VERIFICATION


class InconsistencyError(VerificationError):
    """The log forked from the checkpoint this client remembers (exit 3).

    ``evidence`` is the path of the evidence written: a ``.evidence`` file
    that ``custody verify evidence`` checks offline, or a ``.txt`` report.
    """

    default_exit_code = EXIT_INCONSISTENT
    evidence: Path


class UsageError(CustodyError):
    """The check could not be made: network, files, configuration (exit 1)
    or bad arguments (exit 64)."""

    default_exit_code = EXIT_FAILURE
