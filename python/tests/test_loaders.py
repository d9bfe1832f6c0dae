"""Verify before load with the real log: pull, verify, and the loader
integrations (Hugging Face snapshot, safetensors, torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import custody
import custody.hf
import custody.safetensors
from conftest import LLM, TINY


def tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_snapshot_is_a_directory_safetensors_loads(testbed, model, tmp_path):
    dave = testbed.homes["dave"]
    path = custody.hf.snapshot(model.tagged, home=dave)
    assert path.is_dir()
    assert path.name == model.digest.replace(":", "-"), "the cache is keyed by the proven digest"
    assert tree(path) == tree(model.source), "exactly the published files"
    for shard, tensors in model.tensors.items():
        loaded = load_file(str(path / shard))
        assert loaded.keys() == tensors.keys()
        for k, v in tensors.items():
            np.testing.assert_array_equal(loaded[k], v)
    assert json.loads((path / "config.json").read_text())["hidden_size"] == 32
    # Handed over again: the cached copy is verified again, in full.
    assert custody.hf.snapshot(model.ref, home=dave) == path
    (path / "config.json").write_text('{"model_type": "evil"}')
    with pytest.raises(custody.VerificationError, match="modified: config.json"):
        custody.hf.snapshot(model.ref, home=dave)


def test_snapshot_into_a_chosen_directory(testbed, model, tmp_path):
    dest = tmp_path / "here"
    assert custody.hf.snapshot(model.ref, local_dir=dest, home=testbed.homes["dave"]) == dest
    assert tree(dest) == tree(model.source)


def test_pull_and_verify_return_what_was_proven(testbed, model, tmp_path):
    dave = testbed.homes["dave"]
    dest = tmp_path / "llm"
    v = custody.pull(model.tagged, dest, home=dave)
    assert isinstance(v, custody.Verified)
    assert (v.name, v.version, v.digest, v.publisher) == (LLM, "1", model.digest, "alice")
    assert v.is_directory and v.written and v.path == dest
    assert v.tag_index is not None and v.tag_index > v.publish_index
    assert v.directory == custody.DirectoryCheck(files=3, bytes=v.directory.bytes, access_index=v.directory.access_index)
    assert v.statuses == {"1": "development"}
    assert isinstance(v.checkpoint, custody.Checkpoint) and v.checkpoint.size > v.tag_index
    assert tree(dest) == tree(model.source)

    checked = custody.verify(model.ref, dest, home=dave)
    assert not checked.written and checked.digest == model.digest and checked.tag_index is None


def test_a_modified_directory_does_not_verify_and_the_cli_agrees(testbed, model, tmp_path):
    dave = testbed.homes["dave"]
    dest = tmp_path / "llm"
    custody.pull(model.ref, dest, home=dave)
    shard = dest / "model-00002-of-00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    (dest / "extra.txt").write_text("not published")
    with pytest.raises(custody.VerificationError) as e:
        custody.verify(model.ref, dest, home=dave)
    assert e.value.exit_code == 2
    assert "modified: model-00002-of-00002.safetensors" in e.value.message
    assert "extra: extra.txt" in e.value.message
    cli = testbed.cli(dave, "pull", model.ref, "-o", str(dest), "--verify-only")
    assert cli.code == 2
    assert cli.message == e.value.message


def test_single_file_pull_and_verify(testbed, tiny, tmp_path):
    dave = testbed.homes["dave"]
    dest = tmp_path / "tiny.safetensors"
    v = custody.pull(f"{TINY}@1", dest, home=dave)
    assert not v.is_directory and v.directory is None
    np.testing.assert_array_equal(load_file(str(dest))["w"], tiny["w"])
    custody.verify(f"{TINY}@1", dest, home=dave)
    dest.write_bytes(dest.read_bytes() + b" ")
    with pytest.raises(custody.VerificationError, match="are not the published artifact"):
        custody.verify(f"{TINY}@1", dest, home=dave)


def test_safe_open_opens_only_verified_files(testbed, model, tiny):
    dave = testbed.homes["dave"]
    shard = "model-00001-of-00002.safetensors"
    with custody.safetensors.safe_open(model.ref, framework="numpy", filename=shard, home=dave) as f:
        assert sorted(f.keys()) == sorted(model.tensors[shard])
        np.testing.assert_array_equal(f.get_tensor("embed.weight"), model.tensors[shard]["embed.weight"])
    with custody.safetensors.safe_open(f"{TINY}@1", framework="numpy", home=dave) as f:
        np.testing.assert_array_equal(f.get_tensor("w"), tiny["w"])
    for bad in ("../../etc/passwd", "missing.safetensors", None):
        with pytest.raises(custody.UsageError) as e:
            custody.safetensors.safe_open(model.ref, framework="numpy", filename=bad, home=dave)
        assert e.value.exit_code == 64


def test_torch_load_verifies_first_with_weights_only(testbed, tmp_path):
    torch = pytest.importorskip("torch")
    dave = testbed.homes["dave"]
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    testbed.ok("alice", "publish", str(path), "--name", "demo/torch", "--version", "1")
    loaded = custody.torch.load("demo/torch@1", home=dave, map_location="cpu")
    assert torch.equal(loaded["w"], state["w"])
    with pytest.raises(custody.UsageError, match="weights_only=True"):
        custody.torch.load("demo/torch@1", home=dave, weights_only=False)
    with pytest.raises(custody.VerificationError, match="not in the log"):
        custody.torch.load("demo/torch@2", home=dave)
