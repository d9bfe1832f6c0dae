//! Building blocks of scenario 8 (`http_fuzz.rs`): a seeded RNG, mutations
//! of valid bodies, odd path and query pieces, and a raw HTTP/1.1 client
//! that sends exactly the bytes it is given (no URL normalisation, any
//! header bytes, any `Content-Length`).

pub mod cases;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Environment variable that fixes the seed.
pub const SEED_VAR: &str = "CUSTODY_FUZZ_SEED";

/// The seed: `CUSTODY_FUZZ_SEED` if set, else one from the clock.
pub fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("{SEED_VAR} must be a u64, got {s:?}")),
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

/// SplitMix64: deterministic for a seed, plenty to pick mutations with.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// `n` random characters from `alphabet`.
    pub fn string(&mut self, alphabet: &str, n: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..n).map(|_| chars[self.below(chars.len())]).collect()
    }
}

/// Labelled variants of a valid body: the body itself, truncations at many
/// lengths (every length up to 8, the last 8, and `cuts` others), `flips`
/// copies with 1 to 4 bits flipped, splices, and random bytes.
pub fn mutations(rng: &mut Rng, base: &[u8], cuts: usize, flips: usize) -> Vec<(String, Vec<u8>)> {
    let len = base.len();
    let mut out = vec![("unchanged".to_owned(), base.to_vec())];
    let mut at: BTreeSet<usize> = (0..len.min(8)).collect();
    at.extend(len.saturating_sub(8)..len);
    let want = (at.len() + cuts).min(len);
    while at.len() < want {
        at.insert(rng.below(len));
    }
    out.extend(at.into_iter().map(|c| (format!("truncated to {c} of {len} bytes"), base[..c].to_vec())));
    for _ in 0..flips {
        let mut b = base.to_vec();
        let bits: Vec<usize> = (0..1 + rng.below(4)).map(|_| rng.below(len * 8)).collect();
        for bit in &bits {
            b[bit / 8] ^= 1 << (bit % 8);
        }
        out.push((format!("bits {bits:?} flipped"), b));
    }
    for _ in 0..6 {
        let (i, j) = (rng.below(len + 1), rng.below(len + 1));
        let (i, j) = (i.min(j), i.max(j));
        let mut b = base.to_vec();
        let label = match rng.below(4) {
            0 => {
                b.drain(i..j);
                format!("bytes {i}..{j} deleted")
            }
            1 => {
                b.splice(i..i, base[i..j].to_vec());
                format!("bytes {i}..{j} repeated")
            }
            2 => {
                let n = 1 + rng.below(64);
                b.splice(i..i, rng.bytes(n));
                format!("{n} random bytes inserted at {i}")
            }
            _ => {
                let n = 1 + rng.below(4096);
                b.extend(std::iter::repeat(base[..j].to_vec()).take(n / (j + 1) + 1).flatten());
                format!("prefix of {j} bytes appended ~{n} bytes")
            }
        };
        out.push((label, b));
    }
    for _ in 0..4 {
        let n = rng.below(2 * len + 1);
        out.push((format!("{n} random bytes"), rng.bytes(n)));
    }
    out
}

/// Line-level variants of a text body: a line dropped, doubled, swapped,
/// CRLF line ends, a first line replaced by odd `old` lines.
pub fn line_mutations(rng: &mut Rng, base: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8_lossy(base).into_owned();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = vec![("CRLF line ends".to_owned(), text.replace('\n', "\r\n").into_bytes())];
    for _ in 0..4 {
        let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
        let mut v = lines.clone();
        v.remove(i);
        out.push((format!("line {i} dropped"), v.concat().into_bytes()));
        let mut v = lines.clone();
        v.insert(i, lines[i]);
        out.push((format!("line {i} doubled"), v.concat().into_bytes()));
        let mut v = lines.clone();
        v.swap(i, j);
        out.push((format!("lines {i} and {j} swapped"), v.concat().into_bytes()));
    }
    for old in ODD_OLD_LINES {
        let mut v = lines.clone();
        v[0] = old;
        out.push((format!("first line {old:?}"), v.concat().into_bytes()));
    }
    out
}

/// Replacements for one JSON value of a statement payload.
const ODD_JSON_VALUES: &[&str] = &[
    "\"\"",
    "null",
    "0",
    "-1",
    "18446744073709551616",
    "1e999",
    "0.5",
    "true",
    "[]",
    "{}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"../..\"",
    "\"sha256:\"",
    "\"*\"",
    "\"9999-12-31T23:59:59Z\"",
    "\"1970-01-01T00:00:00Z\"",
    "\"2026-02-30T00:00:00Z\"",
    "\"+275760-09-13T00:00:00Z\"",
    "\"2026-01-01T00:00:00.123456789123Z\"",
];

/// JSON-level variants of a statement payload: one string or number value
/// replaced by an odd one, a key duplicated, an unknown field added, the
/// document nested in an array; plus byte-level mutations.
pub fn json_mutations(rng: &mut Rng, json: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8_lossy(json).into_owned();
    // Spans of string tokens (no escapes in our payloads) and digit runs.
    let mut spans = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'"' {
            i += 1 + b[i + 1..].iter().position(|&c| c == b'"').unwrap_or(b.len() - i - 1) + 1;
            spans.push(start..i.min(b.len()));
        } else if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            spans.push(start..i);
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for _ in 0..24 {
        let span = rng.pick(&spans);
        let value = rng.pick(ODD_JSON_VALUES);
        let mut t = text.clone();
        t.replace_range(span.clone(), value);
        out.push((format!("JSON {:?} replaced by {value}", &text[span]), t.into_bytes()));
    }
    let long = format!("\"{}\"", "x".repeat(70_000));
    let span = rng.pick(&spans);
    let mut t = text.clone();
    t.replace_range(span, &long);
    out.push(("a 70 kB JSON string".into(), t.into_bytes()));
    out.push(("key duplicated".into(), text.replacen('{', "{\"actor\":\"admin\",", 1).into_bytes()));
    out.push(("unknown field".into(), text.replacen('{', "{\"zz\":1,", 1).into_bytes()));
    out.push(("in an array".into(), format!("[{text}]").into_bytes()));
    out.push(("trailing garbage".into(), format!("{text} {{}}").into_bytes()));
    out.extend(mutations(rng, json, 6, 6));
    out
}

/// `envelope` with its `payload` replaced by the base64 of `payload`
/// (the signature no longer matches; parsing the statement still runs).
pub fn with_payload(envelope: &[u8], payload: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(envelope);
    let start = text.find("\"payload\":\"").expect("payload field") + 11;
    let end = start + text[start..].find('"').expect("end of payload");
    format!("{}{}{}", &text[..start], custody_standards::encoding::encode_base64(payload), &text[end..])
        .into_bytes()
}

/// The decoded payload of a DSSE envelope.
pub fn payload_of(envelope: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(envelope);
    let start = text.find("\"payload\":\"").expect("payload field") + 11;
    let end = start + text[start..].find('"').expect("end of payload");
    custody_standards::encoding::decode_base64_strict(&text[start..end]).expect("base64 payload")
}

const ODD_OLD_LINES: &[&str] = &[
    "old 18446744073709551615\n",
    "old 18446744073709551616\n",
    "old -1\n",
    "old 01\n",
    "old  1\n",
    "old\n",
    "OLD 0\n",
    "old 0x10\n",
    "\n",
    "old 0\r\n",
];

/// Numbers as they may appear in a path or query: canonical, non-canonical
/// spellings, signs, overflowing `u64`, percent-encoded.
pub const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "01",
    "00",
    "-1",
    "+1",
    "%2B1",
    "1.0",
    "1e3",
    "0x10",
    "%31",
    "",
    "%201",
    "1%00",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "9223372036854775807",
    "9223372036854775808",
    "4294967296",
    "1000",
    "1001",
    "65535",
    "%EF%BC%91",
];

/// A number near `size`, from [`NUMBERS`], or random digits.
pub fn number(rng: &mut Rng, size: u64) -> String {
    match rng.below(5) {
        0 => (size + rng.below(3) as u64).saturating_sub(1).to_string(),
        1 => {
            let n = 1 + rng.below(30);
            rng.string("0123456789", n)
        }
        _ => rng.pick(NUMBERS).to_owned(),
    }
}

/// The tail of a `/tile/...` path: real tiles of a tree of `size`, and every
/// way of spelling them wrong.
pub fn tile_tail(rng: &mut Rng, size: u64) -> String {
    if rng.chance(20) {
        let partial = size % 256;
        return rng.pick(&[
            format!("0/000.p/{partial}"),
            format!("entries/000.p/{partial}"),
            format!("0/000.p/{}", partial + 1),
            format!("entries/000.p/{}", partial + 1),
            "0/000".into(),
            "entries/000".into(),
            "1/000.p/1".into(),
        ]);
    }
    let level =
        rng.pick(&["0", "1", "2", "entries", "5", "6", "63", "64", "255", "-1", "01", "x0", "", "%30"]);
    let index = rng.pick(&[
        "000",
        "001",
        "x000/000",
        "x001/234",
        "1234",
        "0",
        "00",
        "0000",
        "x1/000",
        "x000/x000/000",
        "x999/999/999/999/999/999/999",
        "x018/446/744/073/709/551/615",
        "x018/446/744/073/709/551/616",
        "x072/057/594/037/927/936",
        "abc",
        "%30%30%30",
        "000/",
        "",
    ]);
    let width = rng.pick(&[
        "",
        "",
        ".p/1",
        ".p/0",
        ".p/8",
        ".p/255",
        ".p/256",
        ".p/257",
        ".p/01",
        ".p/-1",
        ".p/",
        ".p/18446744073709551616",
        ".q/1",
        ".p/1/x",
        ".P/1",
    ]);
    format!("{level}/{index}{width}")
}

/// `sha256:<hex>` of a real artifact and its misspellings.
pub fn digest(rng: &mut Rng, hex: &str) -> String {
    let random = rng.string("0123456789abcdef", 64);
    rng.pick(&[
        format!("sha256:{hex}"),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{hex}0"),
        format!("sha512:{hex}"),
        format!("sha256:{random}"),
        hex.to_owned(),
        "sha256:".into(),
        format!("sha256%3A{hex}"),
        "sha256:..%2F..%2F..%2Fetc%2Fpasswd".into(),
        format!("sha256:{}g", &hex[..63]),
        format!("SHA256:{hex}"),
        format!("sha256:{hex}%00"),
        "%FF%FE".into(),
    ])
}

/// A leaf hash query value for `hash` (standard base64, 32 bytes).
pub fn leaf_hash(rng: &mut Rng, b64: &str, hex: &str) -> String {
    let enc = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let random = rng.string("0123456789abcdef", 64);
    rng.pick(&[
        enc.clone(),
        b64.to_owned(),
        hex.to_owned(),
        hex.to_uppercase(),
        hex[..63].to_owned(),
        format!("{hex}00"),
        enc.trim_end_matches("%3D").to_owned(),
        b64.replace('+', "-").replace('/', "_"),
        "AAAA".into(),
        random,
        String::new(),
        "%ZZ".into(),
    ])
}

/// Query strings for a route taking `keys`, values from `value`, with
/// duplicated, unknown and malformed parameters mixed in.
pub fn query(rng: &mut Rng, keys: &[&str], mut value: impl FnMut(&mut Rng) -> String) -> String {
    let mut parts = Vec::new();
    for k in keys {
        if rng.chance(70) {
            parts.push(format!("{k}={}", value(rng)));
        }
    }
    if !keys.is_empty() && rng.chance(15) {
        let k = rng.pick(keys);
        parts.push(format!("{k}={}", value(rng)));
    }
    if rng.chance(20) {
        let junk =
            rng.pick(&["", "&", "=", "a", "%", "%zz=1", "a=%ff%fe", "wait=checkpoint", "x=%00", "&&&"]);
        parts.push(junk.to_owned());
    }
    if rng.chance(3) {
        parts.push(format!("long={}", "a".repeat(6000)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Random header lines for any request: known names with garbage values
/// (visible ASCII and obs-text) and unknown names.
pub fn garbage_headers(rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let names = [
        "Content-Type",
        "Accept",
        "Accept-Encoding",
        "Content-Encoding",
        "Custody-Statement",
        "Range",
        "If-None-Match",
        "Cookie",
        "Authorization",
        "Expect",
        "X-Forwarded-For",
        "Custody-Leaf-Index",
    ];
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let name =
            if rng.chance(80) { rng.pick(&names).to_owned() } else { format!("X-{}", rng.below(1000)) };
        let max = if rng.chance(5) { 6000 } else { 80 };
        let n = rng.below(max);
        let value: Vec<u8> = (0..n)
            .map(|_| {
                let b = rng.next_u64() as u8;
                if (0x20..0x7f).contains(&b) || b >= 0x80 {
                    b
                } else {
                    b'a' + b % 26
                }
            })
            .collect();
        out.push((name, value));
    }
    out
}

/// One raw request and what may legitimately happen to it.
pub struct Case {
    pub label: String,
    pub raw: Vec<u8>,
    /// Close our sending side after writing (the request is unfinished).
    pub half_close: bool,
    /// A complete, small request must get an answer; protocol garbage,
    /// unfinished and oversized requests may also just be closed.
    pub must_answer: bool,
}

/// An HTTP/1.1 request with `Connection: close`; `Content-Length` is added
/// for a body.
pub fn request(method: &str, target: &str, headers: &[(String, Vec<u8>)], body: Option<&[u8]>) -> Vec<u8> {
    let mut r =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        r.extend_from_slice(k.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
    }
    if let Some(b) = body {
        r.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        r.extend_from_slice(b);
    }
    r
}

/// Sends `raw` on a fresh connection to `addr` (`host:port`) and reads one
/// answer: its status and body, or why there is none. Reading stops at the
/// end of the first final response (actix lingers up to a second for the
/// client to close after `Connection: close`).
pub fn send(addr: &str, raw: &[u8], half_close: bool) -> Result<(u16, Vec<u8>), String> {
    let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s =
        TcpStream::connect_timeout(&sock, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let wrote = s.write_all(raw);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let head_only = raw.starts_with(b"HEAD ");
    let mut resp = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let read = loop {
        if let Some(done) = complete(&mut resp, head_only) {
            return Ok(done);
        }
        match s.read(&mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    match parse_head(&resp) {
        Some((status, end, _)) if status >= 200 => Ok((status, resp[end..].to_vec())),
        _ => Err(format!("no answer (write: {wrote:?}, read: {read:?}, {} bytes)", resp.len())),
    }
}

/// Status, end of the head and `Content-Length` of the response in `resp`,
/// once its head is complete.
fn parse_head(resp: &[u8]) -> Option<(u16, usize, Option<usize>)> {
    let end = resp.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
    let status = head.strip_prefix("http/1.")?.get(2..5)?.parse().ok()?;
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")?.trim().parse().ok());
    let length = if head.contains("transfer-encoding: chunked") { None } else { length };
    Some((status, end, length))
}

/// The first final response, once `resp` holds all of it (interim 1xx
/// answers are dropped from `resp`).
fn complete(resp: &mut Vec<u8>, head_only: bool) -> Option<(u16, Vec<u8>)> {
    loop {
        let (status, end, length) = parse_head(resp)?;
        if status < 200 {
            resp.drain(..end);
            continue;
        }
        let body = &resp[end..];
        return match length {
            _ if head_only => Some((status, Vec::new())),
            Some(n) if body.len() >= n => Some((status, body[..n].to_vec())),
            None if body.ends_with(b"0\r\n\r\n") => Some((status, body.to_vec())),
            _ => None,
        };
    }
}

/// A well-formed GET; panics unless it gets an answer.
pub fn get(addr: &str, target: &str) -> (u16, Vec<u8>) {
    send(addr, &request("GET", target, &[], None), false).unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

/// `host:port` of a `http://host:port` URL.
pub fn addr(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_owned()
}

/// The strings of the JSON array `"key": [...]` in `json` (no escapes
/// expected: base64 and hex only).
pub fn json_strings(json: &[u8], key: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(json);
    let Some(start) = text.find(&format!("\"{key}\":[")) else { return Vec::new() };
    let rest = &text[start + key.len() + 4..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end].split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The value of an unlabelled Prometheus sample `name value`.
pub fn metric(text: &[u8], name: &str) -> Option<f64> {
    String::from_utf8_lossy(text)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}
