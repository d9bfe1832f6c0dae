"""Fixtures of the Python package's tests: a real Custody deployment (the
`custody-testbed` binary: custody-log, three witnesses, a 2-of-3 policy,
users made by `custody init`, a tampering and a forking proxy) and the
models the tests load, published with the real `custody` CLI.

The binaries are looked up in $CUSTODY_BIN_DIR, else
$CARGO_TARGET_DIR/debug, else ~/.cache/custody/target/debug;
scripts/python-test builds them first.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from safetensors.numpy import save_file

LLM = "demo/llm"
TINY = "demo/tiny"


def bin_dir() -> Path:
    if os.environ.get("CUSTODY_BIN_DIR"):
        return Path(os.environ["CUSTODY_BIN_DIR"])
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/custody/target")
    return Path(target) / "debug"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """The CLI's error message (its last `custody: ` line and any lines
        after it), without the prefix."""
        text = "\n" + self.stderr.rstrip("\n")
        at = text.rfind("\ncustody: ")
        assert at >= 0, self.stderr
        return text[at + len("\ncustody: "):]


class Testbed:
    """The running deployment, as `custody-testbed` described it."""

    def __init__(self, desc: dict) -> None:
        self.desc = desc
        self.log_url: str = desc["log_url"]
        self.tamper_url: str = desc["tamper_url"]
        self.fork_url: str = desc["fork_url"]
        self.policy = Path(desc["policy"])
        self.dir = Path(desc["dir"])
        self.custody = desc["custody"]
        self.homes: Dict[str, Path] = {k: Path(v) for k, v in desc["homes"].items()}

    def cli(self, user_home: Path | None, *args: str, env: Dict[str, str] | None = None) -> Run:
        """`custody ARGS` as the user of `user_home` runs it (with no
        CUSTODY_HOME when None), with `env` added."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
        e["CUSTODY_WAIT_SECS"] = "30"
        if user_home is not None:
            e["CUSTODY_HOME"] = str(user_home)
        e.update(env or {})
        p = subprocess.run([self.custody, *args], env=e, capture_output=True, text=True, timeout=120)
        return Run(p.returncode, p.stdout, p.stderr)

    def ok(self, user: str, *args: str) -> str:
        r = self.cli(self.homes[user], *args)
        assert r.code == 0, f"custody {args}: exit {r.code}\n{r.stdout}{r.stderr}"
        return r.stdout

    def init_home(self, home: Path, url: str | None = None) -> Path:
        """`custody init` in a new home (trusting the deployment's policy)."""
        home.mkdir(parents=True, exist_ok=True)
        r = self.cli(home, "init", "--policy", str(self.policy), "--log", url or self.log_url)
        assert r.code == 0, r.stderr
        return home


@pytest.fixture(scope="session")
def testbed(tmp_path_factory):
    exe = bin_dir() / "custody-testbed"
    if not exe.exists():
        pytest.fail(
            f"{exe} is missing: run scripts/python-test, or cargo build -p custody-log "
            "-p custody-witness -p custody-verifier -p custody-testkit --bins"
        )
    log = tmp_path_factory.mktemp("testbed") / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        pytest.fail(f"custody-testbed did not start:\n{log.read_text()}")
    yield Testbed(json.loads(line))
    proc.stdin.close()
    proc.wait(timeout=60)


@dataclass
class Model:
    """A published model directory: its files and tensors."""

    ref: str
    tagged: str
    source: Path
    tensors: Dict[str, Dict[str, np.ndarray]]
    files: List[str]
    digest: str


def write_model(root: Path) -> Dict[str, Dict[str, np.ndarray]]:
    """A Hugging Face style directory: config.json and two safetensors shards."""
    rng = np.random.default_rng(7)
    shards = {
        "model-00001-of-00002.safetensors": {
            "embed.weight": rng.standard_normal((64, 32)).astype(np.float32),
            "layer0.bias": np.arange(32, dtype=np.float32),
        },
        "model-00002-of-00002.safetensors": {
            "head.weight": rng.standard_normal((32, 8)).astype(np.float32),
        },
    }
    root.mkdir(parents=True)
    for name, tensors in shards.items():
        save_file(tensors, str(root / name))
    (root / "config.json").write_text(json.dumps({"model_type": "demo", "hidden_size": 32}))
    return shards


@pytest.fixture(scope="session")
def model(testbed, tmp_path_factory) -> Model:
    """demo/llm@1, a model directory, published and tagged `latest` by alice."""
    src = tmp_path_factory.mktemp("published") / "llm"
    tensors = write_model(src)
    out = json.loads(
        testbed.ok("alice", "--output", "json", "publish", str(src), "--name", LLM, "--version", "1", "--tag", "latest")
    )
    files = sorted(p.name for p in src.iterdir())
    return Model(f"{LLM}@1", f"{LLM}:latest", src, tensors, files, out["digest"])


@pytest.fixture(scope="session")
def tiny(testbed, tmp_path_factory) -> Dict[str, np.ndarray]:
    """demo/tiny@1: a single safetensors file."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    tensors = {"w": np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)}
    save_file(tensors, str(path))
    testbed.ok("alice", "publish", str(path), "--name", TINY, "--version", "1")
    return tensors


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No developer setting leaks in; each test has its own artifact cache."""
    for k in list(os.environ):
        if k.startswith("CUSTODY_") and k != "CUSTODY_BIN_DIR":
            monkeypatch.delenv(k)
    monkeypatch.setenv("CUSTODY_WAIT_SECS", "30")
    monkeypatch.setenv("CUSTODY_CACHE_DIR", str(tmp_path / "cache"))
