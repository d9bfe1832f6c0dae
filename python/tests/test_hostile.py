"""A server that lies: altered weights in transit and a forked checkpoint.
Each refusal is checked against the honest log too, so the test fails if
the check passes everything or refuses everything."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import custody
import custody.hf


def leftovers(parent: Path) -> list:
    return sorted(p.name for p in parent.iterdir())


def test_tampered_server_copy_raises_and_leaves_nothing(testbed, model, tmp_path):
    dave = testbed.homes["dave"]
    parent = tmp_path / "dest"
    parent.mkdir()
    dest = parent / "llm"
    with pytest.raises(custody.VerificationError) as e:
        custody.pull(model.ref, dest, home=dave, log=testbed.tamper_url)
    assert e.value.exit_code == 2 and "the log sent" in e.value.message, e.value.message
    assert not dest.exists() and leftovers(parent) == [], "nothing at (or beside) the destination"

    cache = tmp_path / "cache"
    with pytest.raises(custody.VerificationError):
        custody.hf.snapshot(model.ref, home=dave, log=testbed.tamper_url, cache_dir=cache)
    assert not (cache / model.digest.replace(":", "-")).exists()
    assert [p for p in cache.iterdir() if not p.name.startswith(".")] == []

    # The same calls through the honest log succeed.
    custody.pull(model.ref, dest, home=dave, log=testbed.log_url)
    assert custody.hf.snapshot(model.ref, home=dave, cache_dir=cache).is_dir()


def settled_checkpoint(home: Path) -> custody.Checkpoint:
    """The log's checkpoint once it stopped growing (earlier tests' accesses
    are checkpointed within a few hundred ms), so the fork, forged at the
    log's current size, has the size of the remembered checkpoint."""
    last = custody.checkpoint(home=home)
    for _ in range(60):
        time.sleep(0.5)
        now = custody.checkpoint(home=home)
        if now.size == last.size:
            return now
        last = now
    raise AssertionError("the log kept growing")


def test_forked_checkpoint_raises_inconsistency_with_evidence(testbed, model, tmp_path):
    home = testbed.init_home(tmp_path / "home-erin")
    honest = settled_checkpoint(home)
    assert custody.checkpoint(home=home, log=testbed.log_url).size >= honest.size

    with pytest.raises(custody.InconsistencyError) as e:
        custody.checkpoint(home=home, log=testbed.fork_url)
    err = e.value
    assert isinstance(err, custody.VerificationError), "catching VerificationError catches forks"
    assert err.exit_code == 3
    assert err.evidence is not None and err.evidence.is_file()
    assert err.evidence.parent == home / "evidence" and err.evidence.suffix == ".evidence"
    assert "inconsistent" in err.message and str(err.evidence) in err.message
    # The evidence stands on its own: the CLI verifies it offline.
    r = testbed.cli(home, "--policy", str(testbed.policy), "verify", "evidence", str(err.evidence))
    assert r.code == 0, r.stderr

    dest = tmp_path / "never"
    dave = testbed.homes["dave"]
    custody.checkpoint(home=dave)
    with pytest.raises(custody.InconsistencyError):
        custody.verify(model.ref, model.source, home=dave, log=testbed.fork_url)
    with pytest.raises(custody.InconsistencyError):
        custody.hf.snapshot(model.ref, home=home, log=testbed.fork_url, local_dir=dest)
    assert not dest.exists()
    # The remembered checkpoint stands: the honest log is still accepted.
    assert custody.checkpoint(home=home).size >= honest.size
