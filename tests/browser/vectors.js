// Runs the vector files core generates (standards/tests/vectors,
// registry/tests/vectors) through the browser verifier and reports every
// disagreement. `load(name)` returns a vector file's parsed JSON; `verify` is
// the imported verify.js module. Used by tests/tests/dashboard_browser.rs in
// Chromium (and by node during development: same code, same files).

const b64 = (v, s) => {
  const b = v.fromBase64(s);
  if (!b) throw new Error(`vector has bad base64 ${s}`);
  return b;
};

async function outcome(f) {
  try {
    return { ok: true, value: await f() };
  } catch (e) {
    if (e && e.name === "VerifyError") return { ok: false, error: e.code, line: e.line ?? null, message: e.message };
    return { ok: false, error: "exception", message: String(e && e.stack ? e.stack : e) };
  }
}

export async function runVectors(load, v) {
  const failures = [];
  let checked = 0;
  const expect = (file, desc, got, want) => {
    checked++;
    const g = JSON.stringify(got);
    const w = JSON.stringify(want);
    if (g !== w) failures.push(`${file}: ${desc}: got ${g}, want ${w}`);
  };
  const errOf = (r) => (r.ok ? null : r.error);

  for (const c of (await load("keys.json")).cases) {
    const r = await outcome(() => v.parseVerifierKey(c.vkey));
    const got = { ok: r.ok, error: errOf(r) };
    const want = { ok: c.ok, error: c.ok ? null : c.error };
    if (r.ok && c.ok) {
      got.detail = [r.value.name, r.value.keyId.toString(16).padStart(8, "0"), r.value.type, v.toHex(r.value.publicKey), await v.keyFingerprint(r.value)];
      want.detail = [c.name, c.key_id, c.type, c.public_key, c.fingerprint];
    }
    expect("keys", c.desc, got, want);
  }

  for (const c of (await load("notes.json")).cases) {
    const keys = [];
    for (const k of c.verifiers) keys.push(await v.parseVerifierKey(k));
    const r = await outcome(() => v.openNote(b64(v, c.note), keys));
    const got = { ok: r.ok, error: errOf(r) };
    const want = { ok: c.ok, error: c.ok ? null : c.error };
    if (r.ok && c.ok) {
      got.verified = r.value.verified.map((s) => ({ key_id: s.keyId.toString(16).padStart(8, "0"), name: s.name, timestamp: s.timestamp === null ? null : s.timestamp.toString() }));
      want.verified = c.verified.map((s) => ({ key_id: s.key_id, name: s.name, timestamp: s.timestamp }));
      got.unknown = r.value.unknown.length;
      want.unknown = c.unknown;
    }
    expect("notes", c.desc, got, want);
  }

  for (const c of (await load("checkpoints.json")).cases) {
    const r = await outcome(() => v.parseCheckpoint(c.text));
    const got = r.ok ? { ok: true, origin: r.value.origin, size: r.value.size.toString(), root: v.toBase64(r.value.root), extensions: r.value.extensions } : { ok: false, error: r.error };
    const want = c.ok ? { ok: true, origin: c.origin, size: c.size, root: c.root, extensions: c.extensions } : { ok: false, error: c.error };
    expect("checkpoints", c.desc, got, want);
  }

  for (const c of (await load("policies.json")).cases) {
    const r = await outcome(() => v.parsePolicy(c.policy));
    expect("policies", c.desc, { ok: r.ok, error: errOf(r), line: r.ok ? null : r.line }, { ok: c.ok, error: c.ok ? null : c.error, line: c.ok ? null : c.line });
    if (!r.ok || !c.ok) continue;
    for (const q of c.quorum) {
      expect("policies", `${c.desc}: quorum ${JSON.stringify(q.cosigned)}`, v.evaluateQuorum(r.value, q.cosigned), { met: q.met, satisfied: q.satisfied });
    }
    for (const k of c.checks) {
      const cr = await outcome(() => v.verifyCheckpoint(r.value, b64(v, k.note)));
      const got = cr.ok ? { ok: true, size: cr.value.checkpoint.size.toString(), cosigners: cr.value.cosigners.map((x) => [x.name, x.timestamp.toString()]), satisfied: cr.value.satisfied } : { ok: false, error: cr.error };
      const want = k.ok ? { ok: true, size: k.size, cosigners: k.cosigners, satisfied: k.satisfied } : { ok: false, error: k.error };
      expect("policies", `${c.desc}: ${k.desc}`, got, want);
    }
  }

  const inc = await load("inclusion.json");
  for (const [leaf, hash] of inc.leaf_hashes) expect("inclusion", `leaf hash of ${leaf}`, v.toBase64(await v.leafHash(b64(v, leaf))), hash);
  for (const [a, b, n] of inc.node_hashes) expect("inclusion", "node hash", v.toBase64(await v.nodeHash(b64(v, a), b64(v, b))), n);
  for (const c of inc.cases) {
    const r = await outcome(() => v.verifyInclusion(b64(v, c.leaf), c.index, c.size, c.proof.map((p) => b64(v, p)), b64(v, c.root)));
    expect("inclusion", `${c.desc} (${c.index}, ${c.size})`, { ok: r.ok, error: errOf(r) }, { ok: c.ok, error: c.error });
  }

  for (const c of (await load("leaves.json")).cases) {
    const r = await outcome(() => v.decodeLeaf(b64(v, c.leaf)));
    const got = r.ok ? { ok: true, type: r.value.type, fields: sorted(r.value.fields) } : { ok: false, error: r.error };
    const want = c.ok ? { ok: true, type: c.type, fields: sorted(c.fields) } : { ok: false, error: c.error };
    expect("leaves", c.desc, got, want);
  }

  return { checked, failures };
}

function sorted(obj) {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : 1)));
}
