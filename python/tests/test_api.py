"""The rest of the API on the real log: typed checkpoint and history, the
CLI's configuration used unchanged, errors carrying the CLI's message, lazy
framework imports and the GIL released while verifying."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import custody
from conftest import LLM


def test_checkpoint_is_typed_and_matches_the_cli(testbed, model):
    dave = testbed.homes["dave"]
    cp = custody.checkpoint(home=dave)
    assert isinstance(cp, custody.Checkpoint)
    assert cp.origin == testbed.desc["origin"]
    assert len(cp.cosigners) >= 2 and all(isinstance(c, str) for c in cp.cosigners)
    assert cp.note.startswith(cp.origin + "\n" + str(cp.size) + "\n" + cp.root + "\n")
    cli = json.loads(testbed.ok("dave", "--output", "json", "checkpoint"))
    assert cli["origin"] == cp.origin and cli["size"] >= cp.size
    if cli["size"] == cp.size:
        assert cli["root"] == cp.root


def test_history_is_typed_and_matches_the_cli(testbed, model):
    dave = testbed.homes["dave"]
    h = custody.history(LLM, home=dave)
    assert isinstance(h, custody.History) and h.name == LLM
    assert all(isinstance(r, custody.HistoryRow) for r in h.rows)
    events = [(r.event, r.actor, r.version) for r in h.rows]
    assert ("publish", "alice", "1") in events and ("tag", "alice", "1") in events
    assert [r.index for r in h.rows] == sorted(r.index for r in h.rows)
    assert all(r.index < h.checkpoint.size for r in h.rows)
    cli = json.loads(testbed.ok("dave", "history", LLM, "--json"))
    assert [r["index"] for r in cli["rows"]] == [r.index for r in h.rows]
    assert cli["rows"][0]["detail"] == h.rows[0].detail
    with pytest.raises(custody.VerificationError, match="not in the log"):
        custody.history("demo/never-published", home=dave)


def test_the_home_custody_init_made_is_used_unchanged(testbed, model, monkeypatch, tmp_path):
    # CUSTODY_HOME, as the CLI reads it: no argument at all.
    dave = testbed.homes["dave"]
    saved = {p: p.read_bytes() for p in (dave / "config.json", dave / "policy", dave / "key")}
    monkeypatch.setenv("CUSTODY_HOME", str(dave))
    v = custody.verify(model.ref, model.source)
    assert v.digest == model.digest
    assert {p: p.read_bytes() for p in saved} == saved, "configuration and key untouched"
    assert (dave / "checkpoints").is_dir(), "the remembered checkpoint is the CLI's"

    # The XDG layout `custody init` makes without CUSTODY_HOME.
    monkeypatch.delenv("CUSTODY_HOME")
    user = tmp_path / "user"
    env = {"HOME": str(user), "XDG_CONFIG_HOME": "", "XDG_STATE_HOME": ""}
    r = testbed.cli(None, "init", "--policy", str(testbed.policy), "--log", testbed.log_url, env=env)
    assert r.code == 0, r.stderr
    assert (user / ".config/custody/config.json").is_file()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cp = custody.checkpoint()
    remembered = list((user / ".local/state/custody/checkpoints").iterdir())
    assert len(remembered) == 1 and remembered[0].read_text() == cp.note
    # Without any configuration the error is the CLI's.
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    with pytest.raises(custody.UsageError, match="run `custody init") as e:
        custody.checkpoint()
    assert e.value.exit_code == 1


def test_errors_carry_the_cli_message_and_exit_code(testbed, model, tmp_path):
    dave = testbed.homes["dave"]
    cases = [
        ("demo/llm@9", custody.VerificationError, 2),
        ("not a reference", custody.UsageError, 64),
    ]
    for ref, cls, code in cases:
        with pytest.raises(cls) as e:
            custody.pull(ref, tmp_path / "x", home=dave)
        assert e.value.exit_code == code
        cli = testbed.cli(dave, "pull", ref, "-o", str(tmp_path / "x"))
        assert cli.code == code and cli.message == e.value.message, (cli.stderr, e.value.message)
    down = testbed.cli(dave, "--log", "http://127.0.0.1:9", "checkpoint")
    with pytest.raises(custody.UsageError) as e:
        custody.checkpoint(home=dave, log="http://127.0.0.1:9")
    assert e.value.exit_code == down.code == 1 and down.message == e.value.message
    with pytest.raises(custody.UsageError, match="unknown status"):
        custody.verify(model.ref, model.source, home=dave, allow_status=["retired"])
    with pytest.raises(custody.UsageError):
        custody.verify(model.ref, None, home=dave)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_frameworks_are_imported_lazily():
    code = (
        "import sys, custody, custody.hf, custody.torch, custody.safetensors; "
        "print(sorted(m for m in ('torch', 'safetensors', 'numpy', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_gil_is_released_while_verifying(testbed, model):
    dave = testbed.homes["dave"]
    spans = []

    def work():
        for _ in range(5):
            start = time.monotonic()
            custody.verify(model.ref, model.source, home=dave)
            spans.append((start, time.monotonic()))

    t = threading.Thread(target=work)
    ticks = []
    t.start()
    while t.is_alive():
        ticks.append(time.monotonic())
        time.sleep(0.0005)
    t.join()
    inside = [x for x in ticks if any(a < x < b for a, b in spans)]
    # Held, the GIL would stop this thread for the whole of each call.
    assert len(inside) >= 10, f"{len(inside)} ticks of another thread during 5 verifications"
