"""Times `custody.verify` (the Python package) against the CLI's
`custody pull REF --verify-only -o PATH` on the same model, in the same
run, alternating the two so drift affects both alike. Prints one JSON
object: {"python_s": [...], "cli_s": [...]} (seconds per call).

Run by custody-benchsuite's Python step (bench/src/bin/suite/python.rs)
with the venv's interpreter; usable alone:

    python verify_overhead.py --custody BIN --home HOME --ref REF --path DIR --calls 30
"""

import argparse
import json
import os
import subprocess
import time

import custody


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--custody", required=True, help="the custody binary")
    p.add_argument("--home", required=True, help="CUSTODY_HOME made by custody init")
    p.add_argument("--ref", required=True)
    p.add_argument("--path", required=True, help="the model on disk")
    p.add_argument("--calls", type=int, default=30)
    a = p.parse_args()
    env = dict(os.environ, CUSTODY_HOME=a.home)
    cli = [a.custody, "pull", a.ref, "--verify-only", "-o", a.path]
    # One untimed call of each: caches, first connections, the page cache.
    custody.verify(a.ref, a.path, home=a.home)
    subprocess.run(cli, env=env, check=True, capture_output=True)
    py, sh = [], []
    for _ in range(a.calls):
        t = time.perf_counter()
        custody.verify(a.ref, a.path, home=a.home)
        py.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(cli, env=env, check=True, capture_output=True)
        sh.append(time.perf_counter() - t)
    print(json.dumps({"python_s": py, "cli_s": sh}))


if __name__ == "__main__":
    main()
