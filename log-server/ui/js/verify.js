// Custody's in-browser verifier: a second, independent implementation of the
// checks of the Rust core (standards/ and registry/), using only WebCrypto
// (SHA-256 and Ed25519). Pure: no DOM, no network. Every check either returns
// its result or throws a VerifyError whose `code` matches the Rust error
// variant (snake_case) and whose message says why, so a caller can always turn
// a failure into a visible reason. Test vectors shared with the Rust crates
// (standards/tests/vectors, registry/tests/vectors) pin both sides together.

/** A failed check: `code` names the Rust error variant, `message` the reason. */
export class VerifyError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "VerifyError";
    this.code = code;
    Object.assign(this, extra);
  }
}

const fail = (code, message, extra) => {
  throw new VerifyError(code, message, extra);
};

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Bytes of a string (UTF-8). */
export const bytesOf = (s) => utf8.encode(s);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Lowercase hex of bytes. */
export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// ---------------------------------------------------------------- encodings

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_SHAPE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 of bytes (RFC 4648 section 4, padded). */
export function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += B64[n >> 18] + B64[(n >> 12) & 63];
    s += i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=";
    s += i + 2 < bytes.length ? B64[n & 63] : "=";
  }
  return s;
}

/**
 * Canonical standard base64 (RFC 4648 section 4): padding required, no
 * whitespace, zero trailing bits, the one spelling core accepts. Returns null
 * on anything else.
 */
export function fromBase64(text) {
  if (typeof text !== "string" || !B64_SHAPE.test(text)) return null;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let at = 0;
  for (let i = 0; i < text.length; i += 4) {
    const n =
      (B64.indexOf(text[i]) << 18) |
      (B64.indexOf(text[i + 1]) << 12) |
      (Math.max(B64.indexOf(text[i + 2]), 0) << 6) |
      Math.max(B64.indexOf(text[i + 3]), 0);
    for (const [shift, ok] of [[16, true], [8, at + 1 < out.length], [0, at + 2 < out.length]]) {
      if (ok && at < out.length) out[at++] = (n >> shift) & 255;
    }
  }
  return toBase64(out) === text ? out : null;
}

const U64_MAX = (1n << 64n) - 1n;

/** "ASCII decimal ... with no leading zeroes" as a u64 BigInt, or null. */
export function parseDecimalU64(text) {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(text)) return null;
  const v = BigInt(text);
  return v <= U64_MAX ? v : null;
}

// ----------------------------------------------------------------- hashing

/** SHA-256 of bytes (WebCrypto). */
export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** RFC 6962 section 2.1 leaf hash: SHA-256(0x00 || leaf). */
export const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));

/** RFC 6962 section 2.1 node hash: SHA-256(0x01 || left || right). */
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

// -------------------------------------------------------------------- keys

export const SIG_TYPE_ED25519 = 0x01;
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;

// Ed25519 point checks with BigInt, so a key core refuses (not a curve point,
// or of small order) is refused here too: WebCrypto imports any 32 bytes.
const P = (1n << 255n) - 19n;
const D = (-121665n * modInv(121666n)) % P;
function modPow(b, e) {
  let r = 1n;
  b %= P;
  for (; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
}
function modInv(x) {
  return modPow(((x % P) + P) % P, P - 2n);
}
// Encodings of the eight small-order points with the sign bit cleared,
// including the non-canonical spellings y = p and y = p + 1.
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/** Whether 32 bytes decode to an Ed25519 point that is not of small order. */
export function isStrongEd25519Key(pub) {
  const masked = Uint8Array.from(pub);
  masked[31] &= 0x7f;
  if (SMALL_ORDER.includes(toHex(masked))) return false;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(masked[i]);
  y %= P;
  const yy = (y * y) % P;
  const x2 = (((yy - 1n + P) % P) * modInv(D * yy + 1n)) % P;
  // Euler's criterion: x^2 must be a square mod p for the point to exist.
  return x2 === 0n || modPow(x2, (P - 1n) / 2n) === 1n;
}

/** signed-note: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus". */
export function isValidKeyName(name) {
  return name.length > 0 && !/[\s+\u0000-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u.test(name);
}

/** SHA-256(name || 0x0A || type || public key)[:4], big-endian. */
export async function computeKeyId(name, type, pub) {
  const d = await sha256(concat(bytesOf(name), Uint8Array.of(0x0a, type), pub));
  return ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
}

/**
 * Parses a C2SP signed-note verifier key `<name>+<hex8 key ID>+<base64(type || key)>`
 * (signed-note, Verifier keys), refusing a key ID that does not match its
 * derivation, unsupported types, and invalid or weak Ed25519 keys, as core does.
 */
export async function parseVerifierKey(text) {
  if (typeof text !== "string" || text.length > 1024) fail("malformed", "key string too long");
  const a = text.indexOf("+");
  const b = a < 0 ? -1 : text.indexOf("+", a + 1);
  if (b < 0) fail("malformed", "missing '+' separators");
  const name = text.slice(0, a);
  const hex8 = text.slice(a + 1, b);
  if (!isValidKeyName(name)) fail("invalid_name", `invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hex8)) fail("malformed", "key ID is not 8 lowercase hex digits");
  const raw = fromBase64(text.slice(b + 1));
  if (!raw) fail("malformed", "key material is not canonical base64");
  if (raw.length === 0) fail("malformed", "empty key material");
  const embedded = parseInt(hex8, 16) >>> 0;
  const computed = await computeKeyId(name, raw[0], raw.subarray(1));
  if (embedded !== computed) fail("key_id_mismatch", `key ID ${hex8} does not match computed ${computed.toString(16).padStart(8, "0")}`);
  const type = raw[0];
  if (type !== SIG_TYPE_ED25519 && type !== SIG_TYPE_COSIGNATURE_V1) fail("unsupported_type", `unsupported signature type 0x${type.toString(16).padStart(2, "0")}`);
  const pub = raw.slice(1);
  if (pub.length !== 32) fail("key_length", `key material for type 0x0${type} must be 32 bytes, got ${pub.length}`);
  if (!isStrongEd25519Key(pub)) fail("invalid_public_key", "invalid or weak Ed25519 public key");
  const cryptoKey = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  return { text, name, keyId: embedded, type, publicKey: pub, cryptoKey };
}

/** The fingerprint the dashboard shows: hex SHA-256 of the 32 public key bytes. */
export async function keyFingerprint(key) {
  return toHex(await sha256(key.publicKey));
}

async function ed25519Verify(key, msg, sig) {
  if (sig.length !== 64) return false;
  try {
    return await crypto.subtle.verify({ name: "Ed25519" }, key.cryptoKey, sig, msg);
  } catch {
    return false;
  }
}

// ------------------------------------------------------------ signed notes

export const MAX_NOTE_SIZE = 1 << 20;
export const MAX_SIGNATURES = 100;
const SIG_PREFIX = "\u2014 ";

function noteText(bytes) {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return fail("malformed", "not valid UTF-8");
  }
}

/**
 * Parses a signed note (signed-note, Format): "a text ending in newline
 * (U+000A), followed by a blank line (only a newline), followed by one or more
 * signature lines", each "em dash (U+2014), space (U+0020), key name, space,
 * base64-encoded signature"; "MUST NOT contain any ASCII control characters
 * (those below U+0020) other than newline". The result is unverified.
 */
export function parseNote(bytes) {
  if (typeof bytes === "string") bytes = bytesOf(bytes);
  if (bytes.length > MAX_NOTE_SIZE) fail("too_large", `note is ${bytes.length} bytes, the limit is ${MAX_NOTE_SIZE}`);
  const msg = noteText(bytes);
  if (/[\u0000-\u0009\u000b-\u001f]/.test(msg)) fail("malformed", "control character other than newline");
  const split = msg.lastIndexOf("\n\n");
  if (split < 0) fail("malformed", "no blank line before the signatures");
  const text = msg.slice(0, split + 1);
  const sigs = msg.slice(split + 2);
  if (sigs.length === 0) fail("malformed", "no signature lines");
  if (!sigs.endsWith("\n")) fail("malformed", "last signature line does not end in newline");
  if (sigs.split("\n").length - 1 > MAX_SIGNATURES) fail("too_many_signatures", `note has more than ${MAX_SIGNATURES} signatures`);
  const signatures = sigs.slice(0, -1).split("\n").map(parseSignatureLine);
  return { text, signatures };
}

function parseSignatureLine(line) {
  if (!line.startsWith(SIG_PREFIX)) fail("malformed", "signature line must start with '— '");
  const rest = line.slice(SIG_PREFIX.length);
  const sp = rest.indexOf(" ");
  if (sp < 0) fail("malformed", "signature line has no space after the name");
  const name = rest.slice(0, sp);
  if (!isValidKeyName(name)) fail("malformed", "invalid key name in signature line");
  const raw = fromBase64(rest.slice(sp + 1));
  if (!raw) fail("malformed", "signature is not canonical base64");
  if (raw.length < 5) fail("malformed", "signature shorter than key ID plus one byte");
  const keyId = ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) >>> 0;
  return { name, keyId, signature: raw.slice(4) };
}

/** The timestamp of cosignature/v1 bytes (u64 BE, at most 2^63 - 1), or null. */
export function cosignatureTimestamp(sig) {
  if (sig.length !== 72) return null;
  const ts = new DataView(sig.buffer, sig.byteOffset, 8).getBigUint64(0);
  return ts <= (1n << 63n) - 1n ? ts : null;
}

/**
 * The message a cosignature/v1 signs (tlog-cosignature, Ed25519 signed
 * message): "cosignature/v1", "time" and the timestamp in decimal, then the
 * checkpoint note text, which must be a valid checkpoint.
 */
export function cosignatureMessage(checkpointText, timestamp) {
  if (BigInt(timestamp) > (1n << 63n) - 1n) fail("timestamp", "timestamp exceeds 2^63-1");
  parseCheckpoint(checkpointText);
  return bytesOf(`cosignature/v1\ntime ${BigInt(timestamp)}\n${checkpointText}`);
}

async function verifyWithKey(key, text, sig) {
  if (key.type === SIG_TYPE_ED25519) return ed25519Verify(key, bytesOf(text), sig);
  const ts = cosignatureTimestamp(sig);
  if (ts === null) return false;
  let msg;
  try {
    msg = cosignatureMessage(text, ts);
  } catch {
    return false;
  }
  return ed25519Verify(key, msg, sig.subarray(8));
}

/**
 * Parses and verifies a note (signed-note, Signatures): "Verifiers MUST ignore
 * signatures from unknown keys, even if they share a name or ID (but not
 * both) with a known key. If the key name and ID match a known key, verifiers
 * MUST verify the signature. If a signature from a known key fails to verify,
 * clients SHOULD reject the whole note. If no signature from a known key
 * verifies successfully, clients MUST reject the note."
 */
export async function openNote(bytes, verifiers) {
  const note = parseNote(bytes);
  const verified = [];
  const unknown = [];
  for (const sig of note.signatures) {
    const matches = verifiers.map((v, i) => [v, i]).filter(([v]) => v.name === sig.name && v.keyId === sig.keyId);
    if (matches.length === 0) {
      unknown.push(sig);
      continue;
    }
    const id = `${sig.name}+${sig.keyId.toString(16).padStart(8, "0")}`;
    if (matches.length > 1) fail("ambiguous_verifier", `ambiguous key ${id}`);
    const [v, index] = matches[0];
    if (!(await verifyWithKey(v, note.text, sig.signature))) fail("invalid_signature", `invalid signature for key ${id}`, { keyName: sig.name });
    if (!verified.some((x) => x.verifier === index)) {
      const timestamp = v.type === SIG_TYPE_COSIGNATURE_V1 ? cosignatureTimestamp(sig.signature) : null;
      verified.push({ verifier: index, name: sig.name, keyId: sig.keyId, timestamp });
    }
  }
  if (verified.length === 0) fail("unverified_note", "note has no verifiable signatures");
  return { note, verified, unknown };
}

// ------------------------------------------------------------- checkpoints

/**
 * Parses checkpoint note text (tlog-checkpoint, Note text): "a sequence of at
 * least three non-empty lines": origin, tree size "with no leading zeroes",
 * root hash in base64, then extension lines that "if any, MUST be non-empty".
 */
export function parseCheckpoint(text) {
  if (bytesOf(text).length > MAX_NOTE_SIZE) fail("too_large", "checkpoint text too large");
  if (!text.endsWith("\n")) fail("malformed", "text does not end in newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) fail("malformed", "fewer than three lines");
  const line = (l, what) => {
    if (l.length === 0) fail("malformed", what);
    if (/[\u0000-\u001f]/.test(l)) fail("malformed", "control character in a line");
  };
  line(lines[0], "empty origin line");
  const size = parseDecimalU64(lines[1]);
  if (size === null) fail("malformed", "tree size is not canonical decimal u64");
  const root = fromBase64(lines[2]);
  if (!root || root.length !== 32) fail("malformed", "root hash is not base64 of 32 bytes");
  const extensions = lines.slice(3);
  for (const e of extensions) line(e, "empty extension line");
  return { origin: lines[0], size, root, extensions };
}

// ------------------------------------------------------------------ policy

export const MAX_POLICY_SIZE = 64 * 1024;
const MAX_ENTRIES = 64;

/**
 * Parses a C2SP tlog-policy file (tlog-policy, Structure): "A line defining a
 * group can only reference names of groups and witnesses defined on preceding
 * lines. Similarly, the quorum line must specify a witness or group defined
 * earlier"; "1 <= k <= n"; "A policy file must include exactly one quorum
 * line". Errors carry the 1-based line.
 */
export async function parsePolicy(input) {
  const file = typeof input === "string" ? bytesOf(input) : input;
  if (file.length > MAX_POLICY_SIZE) fail("too_large", `policy is larger than ${MAX_POLICY_SIZE} bytes`);
  const lines = [];
  let start = 0;
  for (let i = 0; i < file.length; i++) {
    if (file[i] === 0x0a) {
      lines.push(file.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < file.length) fail("syntax", `policy line ${lines.length + 1}: last line has no newline`, { line: lines.length + 1 });
  const p = { logs: [], witnesses: [], groups: [], quorum: null };
  let haveQuorum = false;
  const lookup = (name) => {
    const w = p.witnesses.findIndex((x) => x.name === name);
    if (w >= 0) return { witness: w };
    const g = p.groups.findIndex((x) => x.name === name);
    return g >= 0 ? { group: g } : null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const err = (reason) => fail("syntax", `policy line ${line}: ${reason}`, { line });
    const raw = lines[i];
    // "allowed octet values are 0x09, 0x0A, 0x20-0x7E, and 0x80-0xFF".
    if (raw.some((b) => !(b === 0x09 || (b >= 0x20 && b <= 0x7e) || b >= 0x80))) err("disallowed control character");
    const rawTokens = [];
    let t = 0;
    for (let j = 0; j <= raw.length; j++) {
      if (j === raw.length || raw[j] === 0x20 || raw[j] === 0x09) {
        if (j > t) rawTokens.push(raw.subarray(t, j));
        t = j + 1;
      }
    }
    if (rawTokens.length === 0 || rawTokens[0][0] === 0x23) continue;
    const tok = rawTokens.map((x) => {
      try {
        return utf8Strict.decode(x);
      } catch {
        return err("non-UTF-8 name, key or URL");
      }
    });
    const key = async (s, type) => {
      let k;
      try {
        k = await parseVerifierKey(s);
      } catch (e) {
        fail("key", `policy line ${line}: ${e.message}`, { line, keyCode: e.code });
      }
      if (k.type !== type) fail("key", `policy line ${line}: wrong key type`, { line, keyCode: "wrong_type" });
      return k;
    };
    const newName = (name) => {
      if (name === "none") err("the name none is reserved");
      if (lookup(name)) err("name already defined (witnesses and groups share one namespace)");
    };
    const same = (a, b) => equalBytes(a.publicKey, b.publicKey);
    switch (tok[0]) {
      case "log": {
        if (tok.length < 2 || tok.length > 3) err("expected: log <vkey> [<url>]");
        const k = await key(tok[1], SIG_TYPE_ED25519);
        if (p.logs.some((l) => same(l.key, k))) err("duplicate log key");
        if (p.logs.length === MAX_ENTRIES) err("too many logs");
        p.logs.push({ key: k, url: tok[2] ?? null });
        break;
      }
      case "witness": {
        if (tok.length < 3 || tok.length > 4) err("expected: witness <name> <vkey> [<url>]");
        newName(tok[1]);
        const k = await key(tok[2], SIG_TYPE_COSIGNATURE_V1);
        if (p.witnesses.some((w) => same(w.key, k))) err("duplicate witness key");
        if (p.witnesses.length === MAX_ENTRIES) err("too many witnesses");
        p.witnesses.push({ name: tok[1], key: k, url: tok[3] ?? null });
        break;
      }
      case "group": {
        if (tok.length < 4) err("expected: group <name> <all|any|k> <name>...");
        newName(tok[1]);
        if (p.groups.length === MAX_ENTRIES) err("too many groups");
        const members = [];
        for (const name of tok.slice(3)) {
          const m = lookup(name);
          if (!m) err("group member not defined on an earlier line");
          if (members.some((x) => x.witness === m.witness && x.group === m.group)) err("group member listed twice");
          members.push(m);
        }
        let threshold;
        if (tok[2] === "all") threshold = members.length;
        else if (tok[2] === "any") threshold = 1;
        else {
          const k = parseDecimalU64(tok[2]);
          if (k === null) err("threshold is not all, any or a decimal number");
          threshold = Number(k > 1000n ? 1000n : k);
        }
        if (threshold < 1 || threshold > members.length) err("threshold must satisfy 1 <= k <= n");
        p.groups.push({ name: tok[1], threshold, members });
        break;
      }
      case "quorum": {
        if (tok.length !== 2) err("expected: quorum <name>");
        if (haveQuorum) err("more than one quorum line");
        haveQuorum = true;
        if (tok[1] !== "none") {
          p.quorum = lookup(tok[1]);
          if (!p.quorum) err("quorum name not defined on an earlier line");
        }
        break;
      }
      default:
        err("unknown keyword");
    }
  }
  if (!haveQuorum) fail("missing_quorum", "policy has no quorum line");
  return p;
}

/**
 * Evaluates the quorum given which witnesses (by index) cosigned: whether it
 * is met and the satisfied names (witnesses, then groups, in file order).
 */
export function evaluateQuorum(policy, cosigned) {
  const wOk = policy.witnesses.map((_, i) => !!cosigned[i]);
  const gOk = [];
  for (const g of policy.groups) {
    const n = g.members.filter((m) => (m.witness !== undefined ? wOk[m.witness] : gOk[m.group])).length;
    gOk.push(n >= g.threshold);
  }
  const q = policy.quorum;
  const met = q === null ? true : q.witness !== undefined ? wOk[q.witness] : gOk[q.group];
  const satisfied = [
    ...policy.witnesses.filter((_, i) => wOk[i]).map((w) => w.name),
    ...policy.groups.filter((_, i) => gOk[i]).map((g) => g.name),
  ];
  return { met, satisfied };
}

/**
 * Verifies a signed checkpoint against a policy, as core's
 * Policy::verify_checkpoint: signed by a policy log whose key name is the
 * origin (tlog-policy: the log's key name "MUST correspond to the log's
 * origin line"), and the verified cosignatures satisfy the quorum. A failing
 * signature from any policy key rejects the note.
 */
export async function verifyCheckpoint(policy, bytes) {
  const origin = parseCheckpoint(parseNote(bytes).text).origin;
  const logs = policy.logs.filter((l) => l.key.name === origin);
  if (logs.length === 0) fail("unknown_log", `no log in the policy for origin ${JSON.stringify(origin)}`);
  const verifiers = [...logs.map((l) => l.key), ...policy.witnesses.map((w) => w.key)];
  const opened = await openNote(bytes, verifiers);
  const checkpoint = parseCheckpoint(opened.note.text);
  const log = opened.verified.find((v) => v.verifier < logs.length);
  if (!log) fail("no_log_signature", "checkpoint is not signed by a policy log");
  const cosigned = policy.witnesses.map(() => false);
  const cosigners = [];
  for (const v of opened.verified.filter((x) => x.verifier >= logs.length)) {
    const w = v.verifier - logs.length;
    cosigned[w] = true;
    cosigners.push({ name: policy.witnesses[w].name, timestamp: v.timestamp });
  }
  const { met, satisfied } = evaluateQuorum(policy, cosigned);
  if (!met) fail("quorum_not_met", "witness quorum not satisfied", { cosigners });
  return { checkpoint, text: opened.note.text, logKeyName: log.name, cosigners, satisfied };
}

// ------------------------------------------------------- inclusion proofs

export const MAX_INCLUSION_PROOF_LEN = 64;

/** Exact number of hashes in the inclusion proof of `index` in a tree of `size`. */
export function inclusionProofLength(index, size) {
  index = BigInt(index);
  size = BigInt(size);
  if (index >= size) fail("index_out_of_range", `leaf index ${index} is outside a tree of size ${size}`);
  const fn = index;
  const sn = size - 1n;
  const inner = (fn ^ sn).toString(2).replace(/^0+/, "").length;
  const border = (fn >> BigInt(inner)).toString(2).split("1").length - 1;
  return inner + border;
}

/**
 * The root an inclusion proof leads to, RFC 9162 section 2.1.3.2 steps 1-5
 * without the final comparison.
 */
export async function rootFromInclusionProof(hash, index, size, proof) {
  if (proof.length > MAX_INCLUSION_PROOF_LEN) fail("proof_too_long", `proof has ${proof.length} hashes, more than the maximum ${MAX_INCLUSION_PROOF_LEN}`);
  // "1. Compare leaf_index ... against tree_size. If leaf_index is greater
  // than or equal to tree_size, then fail the proof verification."
  const expected = inclusionProofLength(index, size);
  const wrongLength = () => fail("wrong_proof_length", `proof has ${proof.length} hashes, the sizes require ${expected}`);
  if (proof.length !== expected) wrongLength();
  if (proof.some((p) => p.length !== 32)) fail("wrong_proof_length", "proof hash is not 32 bytes");
  // "2. Set fn to leaf_index and sn to tree_size - 1." "3. Set r to hash."
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  let r = hash;
  // "4. For each value p in the inclusion_path array:"
  for (const p of proof) {
    // "a. If sn is 0, then stop the iteration and fail the proof verification."
    if (sn === 0n) wrongLength();
    // "b. If LSB(fn) is set, or if fn is equal to sn, then:"
    if ((fn & 1n) === 1n || fn === sn) {
      // "i. Set r to HASH(0x01 || p || r)."
      r = await nodeHash(p, r);
      // "ii. If LSB(fn) is not set, then right-shift both fn and sn equally
      // until either LSB(fn) is set or fn is 0."
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      // "Otherwise: i. Set r to HASH(0x01 || r || p)."
      r = await nodeHash(r, p);
    }
    // "c. Finally, right-shift both fn and sn one time."
    fn >>= 1n;
    sn >>= 1n;
  }
  // "5. Compare sn to 0. ..."
  if (sn !== 0n) wrongLength();
  return r;
}

/**
 * Checks `leaf` (the entry bytes) is entry `index` of the tree of `size`
 * leaves with root `root`: "If sn is equal to 0 and r and the root_hash are
 * equal, then the log has proven the inclusion of hash."
 */
export async function verifyInclusion(leaf, index, size, proof, root) {
  const r = await rootFromInclusionProof(await leafHash(leaf), index, size, proof);
  if (!equalBytes(r, root)) fail("root_mismatch", "inclusion proof does not lead to the tree root");
}

export { decodeLeaf, parseStrictJson } from "./leaf.js";
