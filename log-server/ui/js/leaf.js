// Custody leaves in the browser: the leaf header (registry/src/leaf.rs), the
// DSSE envelope (registry/src/dsse.rs) and the signed statement
// (registry/src/statement), decoded strictly into the values the dashboard
// shows, so each row can be compared with what the log actually committed.
// The statement's signature and the registry rules (roles, lifecycle) are the
// auditor's job (`custody audit`); this checks shape, identifiers and the
// displayed values, and refuses anything core's parser would refuse there.

import { VerifyError, fromBase64 } from "./verify.js";

const fail = (code, message) => {
  throw new VerifyError(code, message);
};

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

// ------------------------------------------------------------ strict JSON

/** A JSON number kept as its literal, so integers are checked exactly. */
class JsonNumber {
  constructor(raw) {
    this.raw = raw;
  }
}

/**
 * RFC 8259 JSON, refusing what serde_json refuses where JSON.parse is lenient
 * or lossy: duplicate object keys (core's structs deny them), lone
 * surrogates, trailing data. Numbers stay literals (JsonNumber).
 */
export function parseStrictJson(text) {
  let i = 0;
  const bad = (why) => fail("malformed", `malformed JSON at ${i}: ${why}`);
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const value = (depth) => {
    if (depth > 64) bad("nested too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj = Object.create(null);
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') bad("expected a key");
        const k = string();
        if (k in obj) bad(`duplicate field ${JSON.stringify(k)}`);
        ws();
        if (text[i++] !== ":") bad("expected ':'");
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i++] !== "}") bad("expected ',' or '}'");
        return obj;
      }
    }
    if (c === "[") {
      i++;
      const arr = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i++] !== "]") bad("expected ',' or ']'");
        return arr;
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "") bad("expected a value");
    i += m[0].length;
    return new JsonNumber(m[0]);
  };
  const string = () => {
    i++;
    let out = "";
    for (;;) {
      if (i >= text.length) bad("unterminated string");
      const c = text[i++];
      if (c === '"') break;
      if (c < " ") bad("control character in string");
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[i++];
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
      if (simple !== undefined) {
        out += simple;
        continue;
      }
      if (e !== "u") bad("bad escape");
      const hex4 = () => {
        const h = text.slice(i, i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) bad("bad \\u escape");
        i += 4;
        return parseInt(h, 16);
      };
      const u = hex4();
      if (u >= 0xd800 && u <= 0xdbff) {
        if (text.slice(i, i + 2) !== "\\u") bad("lone surrogate");
        i += 2;
        const lo = hex4();
        if (lo < 0xdc00 || lo > 0xdfff) bad("lone surrogate");
        out += String.fromCharCode(u, lo);
      } else if (u >= 0xdc00 && u <= 0xdfff) {
        bad("lone surrogate");
      } else {
        out += String.fromCharCode(u);
      }
    }
    return out;
  };
  const v = value(0);
  ws();
  if (i !== text.length) bad("trailing characters");
  return v;
}

// ------------------------------------------------------------ identifiers

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof JsonNumber);

/** Strict JSON of a signed payload: any JSON error is an invalid statement. */
function payloadJson(payload, what) {
  let text;
  try {
    text = utf8Strict.decode(payload);
  } catch {
    fail("invalid", `${what} payload is not UTF-8`);
  }
  try {
    return parseStrictJson(text);
  } catch (e) {
    return fail("invalid", `invalid ${what}: ${e.message}`);
  }
}

/** Requires exactly the `required` keys plus any of `optional`. */
function shape(obj, what, required, optional = []) {
  if (!isObj(obj)) fail("invalid", `${what} is not an object`);
  for (const k of Object.keys(obj)) {
    if (!required.includes(k) && !optional.includes(k)) fail("invalid", `unknown field ${JSON.stringify(k)} in ${what}`);
  }
  for (const k of required) if (!(k in obj)) fail("invalid", `missing field ${JSON.stringify(k)} in ${what}`);
  return obj;
}

const SEGMENT = "[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?";
const RULES = {
  name: (s) => new RegExp(`^${SEGMENT}/${SEGMENT}$`).test(s) && s.indexOf("/") <= 64 && s.length - s.indexOf("/") - 1 <= 128,
  version: (s) => /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/.test(s),
  tag: (s) => /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(s),
  actor: (s) => /^[a-z0-9][a-z0-9._@-]{0,63}$/.test(s),
  digest: (s) => /^sha256:[0-9a-f]{64}$/.test(s),
  key_id: (s) => /^[0-9a-f]{64}$/.test(s),
  nonce: (s) => /^[0-9a-f]{32}$/.test(s),
  time: isTimestamp,
  text: isText,
};

function ident(v, rule, what) {
  if (typeof v !== "string" || !RULES[rule](v)) fail("invalid", `invalid ${what} ${JSON.stringify(String(v).slice(0, 80))}`);
  return v;
}

/** `YYYY-MM-DDTHH:MM:SSZ`, UTC, years 1970..=9999, a real calendar date. */
function isTimestamp(s) {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  return y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= days && h < 24 && mi < 60 && se < 60;
}

// Unicode general category Cf, as core's FORMAT_CHARS table.
const FORMAT_CHARS =
  /[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\u{110bd}\u{110cd}\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}]/u;

/** Free text: 1..=1024 UTF-8 bytes, no control, separator or format characters. */
function isText(s) {
  const n = new TextEncoder().encode(s).length;
  return n >= 1 && n <= 1024 && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u.test(s) && !FORMAT_CHARS.test(s);
}

function u64(v, what) {
  if (!(v instanceof JsonNumber) || !/^(0|[1-9][0-9]*)$/.test(v.raw) || BigInt(v.raw) >= 1n << 64n) fail("invalid", `${what} is not a u64`);
  return BigInt(v.raw);
}

// ----------------------------------------------------------- event bodies

// Each action: required and optional fields, and which are shown (field name
// on the page -> rule). Bodies not listed here only have their shape checked.
const EVENTS = {
  publish: [["name", "version", "kind", "digest", "size", "media_type"], ["metadata", "lineage"]],
  access: [["name", "version", "digest"]],
  tag: [["name", "tag", "digest", "previous"]],
  promote: [["name", "version", "to"]],
  approve: [["name", "version"]],
  rollback: [["name", "version"]],
  protect: [["name", "tag", "statuses"]],
  grant: [["actor", "key", "role", "pattern"]],
  revoke: [["actor", "role", "pattern"]],
  revoke_key: [["actor", "key_id"]],
  rotate: [["new_key"]],
  hold: [["name"], ["version"]],
  release: [["name"], ["version"]],
  deploy: [["name", "version", "digest", "target"]],
  transfer: [["name", "version", "digest", "destination"]],
};
const SHOWN = { name: "name", version: "version", digest: "digest", tag: "tag" };
const LIFECYCLE = ["development", "staging", "production", "deprecated", "archived"];

function eventFields(action, body, fields) {
  const spec = EVENTS[action];
  shape(body, `${action} body`, spec[0], spec[1] ?? []);
  for (const [k, rule] of Object.entries(SHOWN)) {
    if (k in body) fields[k] = ident(body[k], rule, k);
  }
  if (action === "tag" && body.previous !== null) u64(body.previous, "previous");
  if (action === "publish") {
    if (!["model", "dataset", "other"].includes(body.kind)) fail("invalid", "unknown artifact kind");
    u64(body.size, "size");
  }
  if (action === "promote" && !LIFECYCLE.includes(body.to)) fail("invalid", "unknown lifecycle state");
  for (const k of ["target", "destination"]) if (k in body) ident(body[k], "text", k);
}

/** A string value of an event body, for its sentence. */
function str(v, what) {
  if (typeof v !== "string") fail("invalid", `${what} is not a string`);
  return v;
}

/**
 * What an action did, in words, made only of the body's own values: the
 * same sentence as core's `custody_registry::describe::statement` (the
 * shared vectors hold it for every action).
 */
function detail(action, b) {
  switch (action) {
    case "publish": return `published ${u64(b.size, "size")} bytes (${str(b.media_type, "media_type")})`;
    case "access": return "read the artifact";
    case "tag": return b.previous === null ? "set the tag" : `moved the tag (previous move: entry ${u64(b.previous, "previous")})`;
    case "promote": return `promoted to ${str(b.to, "to")}`;
    case "approve": return "approved for production";
    case "rollback": return "rolled production back to this version";
    case "protect": {
      if (!Array.isArray(b.statuses)) fail("invalid", "statuses is not a list");
      return `protected the tag: its target must be ${b.statuses.map((x) => str(x, "status")).join(", ")}`;
    }
    case "grant": return `granted ${str(b.role, "role")} on ${str(b.pattern, "pattern")} to ${str(b.actor, "actor")}`;
    case "revoke": return `revoked ${str(b.role, "role")} on ${str(b.pattern, "pattern")} from ${str(b.actor, "actor")}`;
    case "revoke_key": return `revoked key ${str(b.key_id, "key_id")} of ${str(b.actor, "actor")}`;
    case "rotate": return `rotated to key ${str(b.new_key, "new_key")}`;
    case "hold": return "version" in b ? "HOLD on this version" : "HOLD on the whole name";
    case "release": return "version" in b ? "released the hold on this version" : "released the hold on the whole name";
    case "deploy": return `deployed to ${str(b.target, "target")}`;
    case "transfer": return `copied to ${str(b.destination, "destination")}`;
    default: return fail("invalid", `no sentence for ${action}`);
  }
}

function breakGlassDetail(inner, b) {
  if (inner === "promote") return `BREAK-GLASS: promoted to ${str(b.to, "to")} without the two-person approval`;
  if (inner === "rollback") return "BREAK-GLASS: rolled back without a fresh two-person approval";
  return "BREAK-GLASS: moved a protected tag past its protection";
}

function statementFields(payload) {
  const st = shape(payloadJson(payload, "statement"), "statement", ["schema", "actor", "key_id", "time", "nonce", "context", "event"]);
  if (u64(st.schema, "schema") !== 1n) fail("invalid", `unsupported statement schema ${st.schema.raw}`);
  const fields = {
    actor: ident(st.actor, "actor", "actor"),
    time: ident(st.time, "time", "timestamp"),
  };
  ident(st.key_id, "key_id", "key_id");
  ident(st.nonce, "nonce", "nonce");
  const ctx = shape(st.context, "context", ["reason"], ["environment", "pipeline", "source"]);
  for (const k of ["reason", "environment", "pipeline", "source"]) {
    if (k in ctx) {
      const v = ident(ctx[k], "text", k);
      if (k !== "source") fields[k] = v;
    }
  }
  if (!isObj(st.event) || Object.keys(st.event).length !== 1) fail("invalid", "event must have exactly one action");
  const [action] = Object.keys(st.event);
  const body = st.event[action];
  if (action === "break_glass") {
    if (!isObj(body) || Object.keys(body).length !== 1) fail("invalid", "break_glass must wrap exactly one action");
    const [inner] = Object.keys(body);
    if (!["promote", "rollback", "tag"].includes(inner)) fail("invalid", `break_glass cannot wrap ${inner}`);
    eventFields(inner, body[inner], fields);
    fields.detail = breakGlassDetail(inner, body[inner]);
  } else if (action in EVENTS) {
    eventFields(action, body, fields);
    fields.detail = detail(action, body);
  } else {
    fail("invalid", `unknown action ${JSON.stringify(action)}`);
  }
  return { kind: action, keyId: st.key_id, fields };
}

// --------------------------------------------------------------- envelope

const PAYLOAD_TYPE = "application/vnd.custody.statement.v1+json";
const LOG_EVENT_PAYLOAD_TYPE = "application/vnd.custody.log-event.v1+json";

function parseEnvelope(bytes) {
  if (bytes.length > 64000) fail("too_large", `envelope is ${bytes.length} bytes, the limit is 64000`);
  let json;
  try {
    json = parseStrictJson(utf8Strict.decode(bytes));
  } catch (e) {
    fail("malformed", `malformed envelope: ${e.message}`);
  }
  if (!isObj(json)) fail("malformed", "malformed envelope: not an object");
  for (const k of Object.keys(json)) if (!["payloadType", "payload", "signatures"].includes(k)) fail("malformed", `malformed envelope: unknown field ${k}`);
  if (typeof json.payloadType !== "string" || typeof json.payload !== "string" || !Array.isArray(json.signatures)) fail("malformed", "malformed envelope: missing or mistyped field");
  const typeLen = new TextEncoder().encode(json.payloadType).length;
  if (typeLen < 1 || typeLen > 256) fail("payload_type", "payloadType must be 1..=256 bytes");
  if (json.signatures.length < 1 || json.signatures.length > 8) fail("signature_count", `an envelope carries 1..=8 signatures, not ${json.signatures.length}`);
  const payload = fromBase64(json.payload);
  if (!payload) fail("base64", "payload is not canonical standard base64");
  const signatures = json.signatures.map((s) => {
    if (!isObj(s) || Object.keys(s).length !== 2 || typeof s.keyid !== "string" || typeof s.sig !== "string") fail("malformed", "malformed envelope: bad signature object");
    if (!/^[0-9a-f]{64}$/.test(s.keyid)) fail("key_id", "keyid is not a Custody key ID (64 lowercase hex digits)");
    const sig = fromBase64(s.sig);
    if (!sig) fail("base64", "sig is not canonical standard base64");
    if (sig.length !== 64) fail("signature_length", `signature is ${sig.length} bytes, Ed25519 signatures are 64`);
    return { keyid: s.keyid, sig };
  });
  return { payloadType: json.payloadType, payload, signatures };
}

function logEventFields(payload) {
  const ev = shape(payloadJson(payload, "log event"), "log event", ["schema", "origin", "time", "event"]);
  if (u64(ev.schema, "schema") !== 1n) fail("invalid", "unsupported log event schema");
  if (typeof ev.origin !== "string" || ev.origin === "") fail("invalid", "invalid origin");
  const fields = { actor: `log ${ev.origin}`, time: ident(ev.time, "time", "timestamp") };
  shape(ev.event, "log event body", ["integrity_violation"]);
  const v = shape(ev.event.integrity_violation, "integrity_violation", ["digest", "observed", "access_index"]);
  fields.digest = ident(v.digest, "digest", "digest");
  const observed = ident(v.observed, "text", "observed");
  const access = u64(v.access_index, "access_index");
  fields.detail = `INTEGRITY VIOLATION detected by the log ${ev.origin}: stored bytes read as ${observed} (access at entry ${access})`;
  return { kind: "integrity_violation", fields };
}

// ------------------------------------------------------------------ leaves

/**
 * Decodes the exact bytes of a log entry (registry/src/leaf.rs): magic
 * "CUSTODY", a version byte (1 statement, 2 state commitment, 3 log event),
 * then for 1 and 3 the receive time (u64 BE), the envelope length (u32 BE,
 * 1..=64000, matching the bytes exactly) and the DSSE envelope. Returns
 * `{type, kind, fields, receivedMs}`; `fields` holds the dashboard's
 * data-field values (kind, actor, name, version, digest, tag, environment,
 * pipeline, reason, time, detail) that the entry carries.
 */
export function decodeLeaf(bytes) {
  const magicOk = bytes.length >= 8 && String.fromCharCode(...bytes.subarray(0, 7)) === "CUSTODY";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (magicOk && bytes[7] === 2) {
    if (bytes.length !== 48) fail("commitment_size", `commitment leaf is ${bytes.length} bytes, not 48`);
    return { type: "commitment", kind: "commitment", fields: { kind: "commitment" }, index: view.getBigUint64(8) };
  }
  // Same order of checks as core: size, magic, version, length.
  if (bytes.length < 20) fail("truncated", `leaf is ${bytes.length} bytes, shorter than the 20-byte header`);
  if (!magicOk) fail("magic", "not a Custody registry leaf (bad magic)");
  const version = bytes[7];
  if (version !== 1 && version !== 3) fail("version", `unknown leaf version ${version}`);
  const receivedMs = view.getBigUint64(8);
  const declared = view.getUint32(16);
  if (declared === 0 || declared > 64000) fail("envelope_length", `envelope length ${declared} outside 1..=64000`);
  if (declared !== bytes.length - 20) fail("length_mismatch", `envelope length field says ${declared}, ${bytes.length - 20} bytes follow`);
  const env = parseEnvelope(bytes.subarray(20));
  if (version === 3) {
    if (env.payloadType !== LOG_EVENT_PAYLOAD_TYPE) fail("shape", "not a log event envelope: payload type");
    if (env.signatures.length !== 1) fail("shape", "not a log event envelope: signature count");
    const ev = logEventFields(env.payload);
    return { type: "log_event", kind: ev.kind, fields: { kind: ev.kind, ...ev.fields }, receivedMs };
  }
  if (env.payloadType !== PAYLOAD_TYPE) fail("payload_type", `payloadType must be ${PAYLOAD_TYPE}`);
  if (env.signatures.length !== 1) fail("signature_count", `a statement carries exactly one signature, not ${env.signatures.length}`);
  const st = statementFields(env.payload);
  if (st.keyId !== env.signatures[0].keyid) fail("key_id_mismatch", "envelope keyid does not match the statement's key_id");
  return { type: "statement", kind: st.kind, fields: { kind: st.kind, ...st.fields }, receivedMs };
}
