#!/usr/bin/env bash
# Re-signs the known-answer model directory with the real model_signing tool
# (the venv of scripts/python-env) and rewrites model.sig here. The keys are
# kept: delete key.pem first to make new ones. Run from anywhere; the
# directory is built in a temporary folder from model-dir.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$("$here/../../../../scripts/python-env")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -f "$here/key.pem" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$here/key.pem"
  openssl ec -in "$here/key.pem" -pubout -out "$here/key.pub.pem"
  openssl ecparam -name prime256v1 -genkey -noout | openssl ec -pubout -out "$here/other.pub.pem"
  openssl ecparam -name secp384r1 -genkey -noout | openssl ec -pubout -out "$here/p384.pub.pem"
fi

"$venv/bin/python" - "$here/model-dir.txt" "$work/tiny-model" <<'PY'
import pathlib, sys
spec, root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
lines = [l.split() for l in spec.read_text().splitlines() if l.strip() and not l.startswith("#")]
for n, (path, size) in enumerate(lines):
    f = root / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(bytes((31 * i + 17 * n + 7) % 256 for i in range(int(size))))
PY
"$venv/bin/model_signing" sign key --private_key "$here/key.pem" --signature "$here/model.sig" "$work/tiny-model"
"$venv/bin/model_signing" verify key --public_key "$here/key.pub.pem" --signature "$here/model.sig" "$work/tiny-model"
