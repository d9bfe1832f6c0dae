// The dashboard's page glue: chooses the trust root (a tlog-policy the user
// pinned in this browser, else the server's own, and says which), verifies
// the log's checkpoint with it, then proves every entry row on the page
// against that checkpoint and checks each shown value against the proven
// leaf. A row is marked verified only when both hold; anything else marks it
// failed with the reason, never hides it. On /ui/entries it also follows the
// log live. The server-rendered page stays readable without any of this.

import * as v from "./verify.js";

const BATCH = 250;
const POLL_MS = 5000;
const MAX_POLL_MS = 60000;
const COLUMNS = ["index", "time", "kind", "actor", "name", "version", "digest", "tag", "detail", "reason", "environment", "pipeline", "verdict"];

const $ = (sel) => document.querySelector(sel);
const origin = document.body.dataset.origin ?? "";
const pinKey = `custody.pinned-policy.${origin}`;

function setState(el, attr, state, text, title) {
  if (!el) return;
  el.dataset[attr] = state;
  el.textContent = text;
  if (title !== undefined) el.title = title;
}

const reasonOf = (e) => (e && e.message ? e.message : String(e));

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store", credentials: "omit" });
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  return r.json();
}

async function getBytes(url) {
  const r = await fetch(url, { cache: "no-store", credentials: "omit" });
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function pinnedPolicy() {
  try {
    return localStorage.getItem(pinKey);
  } catch {
    return null;
  }
}

// ------------------------------------------------------------ trust root

/**
 * The policy to verify with and where it came from. With a pinned policy the
 * server's claims are only compared with it: a server naming a log key the
 * pinned policy does not list is failing, whatever it signs.
 */
async function trustRoot() {
  const pinned = pinnedPolicy();
  let server = null;
  let serverError = null;
  try {
    server = await getJson("/ui/api/trust");
  } catch (e) {
    serverError = e;
  }
  if (pinned !== null) {
    let policy;
    try {
      policy = await v.parsePolicy(pinned);
    } catch (e) {
      throw new Error(`your pinned policy cannot be read (${reasonOf(e)}); clear it or pin a corrected one`);
    }
    if (server && typeof server.log_vkey === "string") {
      const known = policy.logs.some((l) => l.key.text === server.log_vkey);
      if (!known) throw new Error(`the server says its log key is ${server.log_vkey}, which your pinned policy does not name: the log's key has changed or the server is not the log you pinned`);
    }
    return { mode: "pinned", policy };
  }
  if (!server) throw new Error(`cannot read the server's keys (${reasonOf(serverError)})`);
  if (typeof server.log_vkey !== "string") throw new Error("the server's /ui/api/trust has no log key");
  // A log started without --policy has no witnesses: its key alone.
  let text = typeof server.policy === "string" ? server.policy : `log ${server.log_vkey}\nquorum none\n`;
  let policy = await v.parsePolicy(text);
  if (!policy.logs.some((l) => l.key.text === server.log_vkey)) {
    text = `log ${server.log_vkey}\n${text}`;
    policy = await v.parsePolicy(text);
  }
  return { mode: "server-policy", policy };
}

async function grouped(key) {
  const hex = await v.keyFingerprint(key);
  return hex.match(/.{4}/g).join(" ");
}

/** Lists the keys this browser actually verifies with, and flags server-shown ones it does not use. */
async function showKeysInUse(policy) {
  const panel = $("#trust");
  if (!panel) return;
  const used = new Set();
  const dl = document.createElement("dl");
  dl.id = "keys-in-use";
  dl.className = "keys";
  const add = async (label, name, key) => {
    const fp = await grouped(key);
    used.add(fp);
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    const n = document.createElement("span");
    n.className = "key-name";
    n.textContent = name;
    const code = document.createElement("code");
    code.className = "fingerprint";
    code.textContent = fp;
    dd.append(n, " ", code);
    dl.append(dt, dd);
  };
  for (const l of policy.logs) await add("Log key in use", l.key.name, l.key);
  for (const w of policy.witnesses) await add("Witness key in use", w.name, w.key);
  const heading = document.createElement("h3");
  heading.textContent = "Keys your browser verifies with";
  $("#keys-in-use-heading")?.remove();
  $("#keys-in-use")?.remove();
  heading.id = "keys-in-use-heading";
  const status = $("#trust-status");
  panel.insertBefore(heading, status);
  panel.insertBefore(dl, status);
  for (const code of panel.querySelectorAll("dl:not(#keys-in-use) code.fingerprint")) {
    if (!used.has(code.textContent.trim())) {
      code.classList.add("unused");
      code.title = "The server shows this key; your browser does not verify with it.";
    }
  }
}

// ------------------------------------------------------------ checkpoint

async function verifiedCheckpoint(policy) {
  const bytes = await getBytes("/checkpoint");
  const cp = await v.verifyCheckpoint(policy, bytes);
  if (origin && cp.checkpoint.origin !== origin) throw new Error(`checkpoint origin ${cp.checkpoint.origin} is not this log's ${origin}`);
  return cp;
}

function describeCheckpoint(cp) {
  const who = cp.cosigners.length ? `cosigned by ${cp.cosigners.map((c) => c.name).join(", ")}` : "no witness cosignature required";
  return `Checkpoint verified in your browser: ${cp.checkpoint.size} entries, signed by ${cp.logKeyName}, ${who}.`;
}

// ------------------------------------------------------------------ rows

function markRows(rows, state, text, title) {
  for (const tr of rows) setState(tr.querySelector("td.verdict"), "verdict", state, text, title);
  for (const tr of rows) tr.classList.toggle("failed", state === "failed");
}

/** Compares every data-field cell of `tr` with the values decoded from the proven leaf. */
function mismatch(tr, fields) {
  for (const td of tr.querySelectorAll("td[data-field]")) {
    const f = td.dataset.field;
    const want = fields[f] ?? "";
    if (td.textContent !== want) return `the page shows ${f} ${JSON.stringify(td.textContent)}, the logged entry has ${JSON.stringify(want)}`;
  }
  return null;
}

/**
 * Proves `indexes` at the checkpoint's size: fetches the leaves and proofs,
 * checks each answer is for the index asked, hashes each leaf, verifies its
 * proof, decodes it. Returns index -> {fields} or {error}.
 */
async function proveIndexes(cp, indexes) {
  const out = new Map();
  const size = cp.checkpoint.size;
  for (let i = 0; i < indexes.length; i += BATCH) {
    const batch = indexes.slice(i, i + BATCH);
    let body;
    try {
      body = await getJson(`/ui/api/proofs?size=${size}&${batch.map((x) => `index=${x}`).join("&")}`);
      if (String(body.size) !== String(size) || !Array.isArray(body.entries) || body.entries.length !== batch.length) throw new Error("the proofs answer does not match the request");
    } catch (e) {
      for (const x of batch) out.set(x, { error: `no proof: ${reasonOf(e)}` });
      continue;
    }
    for (let k = 0; k < batch.length; k++) {
      const index = batch[k];
      out.set(index, await proveOne(cp, index, body.entries[k]));
    }
  }
  return out;
}

async function proveOne(cp, index, entry) {
  try {
    if (!entry || String(entry.index) !== String(index)) throw new Error("the proofs answer is for another entry");
    const leaf = v.fromBase64(entry.leaf);
    if (!leaf) throw new Error("leaf is not base64");
    if (!Array.isArray(entry.proof)) throw new Error("proof is not a list");
    const proof = entry.proof.map((p) => {
      const h = v.fromBase64(p);
      if (!h || h.length !== 32) throw new Error("proof hash is not base64 of 32 bytes");
      return h;
    });
    await v.verifyInclusion(leaf, index, cp.checkpoint.size, proof, cp.checkpoint.root);
    return { leaf: v.decodeLeaf(leaf) };
  } catch (e) {
    return { error: reasonOf(e) };
  }
}

async function verifyRows(cp, rows) {
  const byIndex = new Map();
  for (const tr of rows) {
    const raw = tr.dataset.entryIndex;
    if (!/^(0|[1-9][0-9]{0,15})$/.test(raw ?? "")) {
      markRows([tr], "failed", "failed: no valid entry index", "The row names no valid entry index.");
      continue;
    }
    const i = Number(raw);
    if (!byIndex.has(i)) byIndex.set(i, []);
    byIndex.get(i).push(tr);
  }
  const outside = [...byIndex.keys()].filter((i) => i >= cp.checkpoint.size);
  for (const i of outside) {
    markRows(byIndex.get(i), "failed", "failed: not in the checkpoint", `Entry ${i} is beyond the verified checkpoint of ${cp.checkpoint.size} entries.`);
    byIndex.delete(i);
  }
  const results = await proveIndexes(cp, [...byIndex.keys()]);
  for (const [i, trs] of byIndex) {
    const r = results.get(i);
    for (const tr of trs) {
      const why = r.error ?? mismatch(tr, r.leaf.fields);
      if (why) markRows([tr], "failed", `failed: ${why}`, `Entry ${i}: ${why}`);
      else markRows([tr], "verified", "verified", `Entry ${i} is in the log's checkpoint of ${cp.checkpoint.size} entries, and every value shown is the logged one.`);
    }
  }
}

// ------------------------------------------------------------- live view

function liveRow(index, leaf) {
  const tr = document.createElement("tr");
  tr.dataset.entryIndex = String(index);
  tr.id = `entry-${index}`;
  tr.className = "live";
  for (const col of COLUMNS) {
    const td = document.createElement("td");
    if (col === "index") {
      td.className = "index";
      td.textContent = String(index);
    } else if (col === "detail") {
      td.className = "detail";
      td.dataset.field = "detail";
      td.textContent = leaf.fields.detail ?? "";
    } else if (col === "verdict") {
      td.className = "verdict";
      td.dataset.verdict = "verified";
      td.textContent = "verified";
    } else if (leaf.type === "log_event" && !(col in leaf.fields)) {
      td.className = "none";
    } else {
      td.dataset.field = col;
      td.textContent = leaf.fields[col] ?? "";
    }
    tr.append(td);
  }
  return tr;
}

// The policy the live view verifies with: the latest trust root chosen.
let livePolicy = null;

function followLive() {
  const table = $("#live");
  if (!table) return;
  let shown = BigInt(table.dataset.size ?? "0");
  let delay = POLL_MS;
  const tick = async () => {
    try {
      const cp = await verifiedCheckpoint(livePolicy);
      setState($("#checkpoint-status"), "state", "verified", describeCheckpoint(cp));
      const size = cp.checkpoint.size;
      if (size > shown) {
        const from = size - shown > 1000n ? size - 1000n : shown;
        const indexes = [];
        for (let i = from; i < size; i++) indexes.push(Number(i));
        const results = await proveIndexes(cp, indexes);
        const tbody = table.tBodies[0] ?? table.appendChild(document.createElement("tbody"));
        for (const i of indexes) {
          const r = results.get(i);
          if (r.error) {
            const tr = liveRow(i, { type: "statement", fields: {} });
            markRows([tr], "failed", `failed: ${r.error}`, `Entry ${i}: ${r.error}`);
            tbody.prepend(tr);
          } else if (r.leaf.type !== "commitment") {
            tbody.prepend(liveRow(i, r.leaf));
          }
        }
        shown = size;
        table.dataset.size = String(size);
      }
      delay = POLL_MS;
    } catch (e) {
      setState($("#checkpoint-status"), "state", "failed", `Checkpoint failed in your browser: ${reasonOf(e)}`);
      delay = Math.min(delay * 2, MAX_POLL_MS);
    }
    setTimeout(tick, delay);
  };
  setTimeout(tick, delay);
}

// ----------------------------------------------------------- pin controls

function setUpPin() {
  const pin = $("#pin");
  const area = $("#pin-policy");
  if (!pin || !area) return;
  pin.hidden = false;
  const current = pinnedPolicy();
  if (current !== null) area.value = current;
  let msg = $("#pin-message");
  if (!msg) {
    msg = document.createElement("p");
    msg.id = "pin-message";
    msg.setAttribute("role", "status");
    pin.append(msg);
  }
  $("#pin-save")?.addEventListener("click", async () => {
    const text = area.value.endsWith("\n") ? area.value : `${area.value}\n`;
    try {
      await v.parsePolicy(text);
      localStorage.setItem(pinKey, text);
      msg.textContent = "Pinned. Verifying again with your policy.";
      await run();
    } catch (e) {
      msg.textContent = `Not pinned: ${reasonOf(e)}`;
    }
  });
  $("#pin-clear")?.addEventListener("click", async () => {
    localStorage.removeItem(pinKey);
    area.value = "";
    msg.textContent = "Forgotten. Verifying again with the server's policy.";
    await run();
  });
}

// ------------------------------------------------------------------ main

let started = false;

async function run() {
  const trustStatus = $("#trust-status");
  const cpStatus = $("#checkpoint-status");
  const rows = [...document.querySelectorAll("tr[data-entry-index]")];
  markRows(rows, "pending", "verifying…");
  let root;
  let cp;
  try {
    root = await trustRoot();
    await showKeysInUse(root.policy);
  } catch (e) {
    setState(trustStatus, "state", "failed", `Failed: ${reasonOf(e)}. Nothing on this page is verified.`);
    setState(cpStatus, "state", "failed", "Checkpoint not verified: no trusted keys.");
    markRows(rows, "failed", "failed: no trusted keys", reasonOf(e));
    return;
  }
  try {
    cp = await verifiedCheckpoint(root.policy);
    setState(cpStatus, "state", "verified", describeCheckpoint(cp));
  } catch (e) {
    const why = reasonOf(e);
    setState(cpStatus, "state", "failed", `Checkpoint failed in your browser: ${why}.`);
    const whose = root.mode === "pinned" ? "your pinned policy" : "the server's own policy";
    setState(trustStatus, "state", "failed", `Failed: the log's checkpoint does not verify with ${whose} (${why}). The server may have changed its keys.`);
    markRows(rows, "failed", "failed: checkpoint not verified", why);
    return;
  }
  if (root.mode === "pinned") {
    setState(trustStatus, "state", "pinned", "Verified with the policy you pinned in this browser: the keys below are yours, not the server's word.");
  } else {
    setState(trustStatus, "state", "server-policy", "Verified with the server's own policy, because you have not pinned one: a server that lied about its keys would pass this check. Compare the fingerprints with your organisation's, or pin your policy below.");
  }
  // Marks for the bench suite's in-browser verification rate.
  performance.mark("custody:rows-start");
  try {
    await verifyRows(cp, rows);
  } catch (e) {
    // A bug or a browser failure must not leave rows looking pending.
    const left = rows.filter((tr) => tr.querySelector("td.verdict")?.dataset.verdict === "pending");
    markRows(left, "failed", `failed: ${reasonOf(e)}`, reasonOf(e));
  }
  const unique = new Set(rows.map((tr) => tr.dataset.entryIndex)).size;
  performance.mark("custody:rows-end", { detail: { entries: unique } });
  livePolicy = root.policy;
  if (!started) followLive();
  started = true;
}

setUpPin();
run();
