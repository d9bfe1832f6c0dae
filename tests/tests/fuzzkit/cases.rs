//! The cases of scenario 8 (`http_fuzz.rs`) for one route: odd targets,
//! other methods, garbage headers, mutated and oversized bodies, statement
//! headers, and protocol-level garbage.

use custody_standards::encoding::encode_base64;

use super::*;

const MODEL_NAMES: &[&str] = &[
    "demo/model",
    "demo/nope",
    "DEMO/model",
    "demo/..",
    "../demo",
    "demo/model%2Fextra",
    "d%C3%A9mo/model",
    "-/-",
    "demo/model.",
    "%00/x",
    "demo/%20",
    "a/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
];
const ACTORS: &[&str] =
    &["alice", "admin", "nobody", "ADMIN", "al%2Fice", "..", "%00", "alice+1a2b3c4d", "a%20b", "%FF"];
const REFS: &[&str] = &[
    "demo/model@1",
    "demo/model:production",
    "demo/model@",
    "demo/model:",
    "@",
    ":",
    "demo/model@1@2",
    "demo/model:a:b",
    "sha256:",
    "a/b/c@1",
    "demo%2Fmodel@1",
    "%00",
    "demo/model@%FF",
];
const WAITS: &[&str] = &["checkpoint", "", "CHECKPOINT", "checkpoint%00", "1", "checkpoint&wait=checkpoint"];
const STATEMENT_HEADER: &str = "Custody-Statement";

/// Valid inputs, each taken from a real request of this deployment.
pub struct Ctx {
    pub size: u64,
    pub artifact: Vec<u8>,
    pub digest_hex: String,
    pub leaf_b64: String,
    pub leaf_hex: String,
    pub origin_hex: String,
    pub entry: Vec<u8>,
    /// Logged envelopes: a grant, the publish, the access of the pull.
    pub grant: Vec<u8>,
    pub publish: Vec<u8>,
    pub access: Vec<u8>,
    pub add_bodies: Vec<Vec<u8>>,
    pub gossip_bodies: Vec<Vec<u8>>,
}

/// A complete request: it must be answered, unless it is over 16 kB (the
/// server may answer before reading it all and close; the answer can then
/// be lost in the reset).
fn case(label: impl Into<String>, raw: Vec<u8>) -> Case {
    let must_answer = raw.len() <= 16_000;
    Case { label: label.into(), raw, half_close: false, must_answer }
}

fn lenient(label: impl Into<String>, raw: Vec<u8>, half_close: bool) -> Case {
    Case { label: label.into(), raw, half_close, must_answer: false }
}

/// A target for `route`: a real one or any odd spelling, with a query.
fn target(rng: &mut Rng, method: &str, route: &str, ctx: &Ctx) -> String {
    let size = ctx.size;
    let path = match route {
        "/tile/{tail:.*}" => format!("/tile/{}", tile_tail(rng, size)),
        "/entries/{index}" => format!("/entries/{}", number(rng, size)),
        "/blobs/{digest}" | "/registry/artifacts/{digest}" | "/registry/artifacts/{digest}/entries" => {
            route.replace("{digest}", &digest(rng, &ctx.digest_hex))
        }
        "/registry/models/{org}/{model}" => format!("/registry/models/{}", rng.pick(MODEL_NAMES)),
        "/registry/actors/{actor}" | "/registry/actors/{actor}/entries" => {
            route.replace("{actor}", rng.pick(ACTORS))
        }
        "/evidence/{id}" | "/{origin_hex}/checkpoint" => {
            let hex = &ctx.origin_hex;
            let id = rng.pick(&[
                hex.clone(),
                hex.to_uppercase(),
                hex[..63].to_owned(),
                format!("{hex}0"),
                "0".repeat(64),
                "g".repeat(64),
                "..".into(),
                "%2e%2e".into(),
            ]);
            route.replace("{id}", &id).replace("{origin_hex}", &id)
        }
        fixed => fixed.to_owned(),
    };
    let (b64, hex) = (ctx.leaf_b64.clone(), ctx.leaf_hex.clone());
    let q = match (method, route) {
        ("POST", _) => query(rng, &["wait"], |r| r.pick(WAITS).to_owned()),
        (_, "/entries") => query(rng, &["start", "end"], |r| number(r, size)),
        (_, "/proof/inclusion" | "/proof/bundle") => query(rng, &["index", "leaf_hash", "size"], |r| {
            if r.chance(40) {
                leaf_hash(r, &b64, &hex)
            } else {
                number(r, size)
            }
        }),
        (_, "/proof/consistency") => query(rng, &["old", "new"], |r| number(r, size)),
        (_, "/registry/resolve") => {
            query(rng, &["ref"], |r| if r.chance(20) { digest(r, &hex) } else { r.pick(REFS).to_owned() })
        }
        (_, "/state/proof") => query(rng, &["key", "size"], |r| {
            if r.chance(50) {
                hex::encode(state_key().encode())
            } else {
                number(r, size)
            }
        }),
        (
            _,
            "/registry/artifacts/{digest}"
            | "/registry/artifacts/{digest}/entries"
            | "/registry/actors/{actor}"
            | "/registry/actors/{actor}/entries"
            | "/registry/models/{org}/{model}/entries",
        ) => query(rng, &["after", "limit"], |r| number(r, size)),
        _ => query(rng, &[], |_| String::new()),
    };
    let path = match rng.below(14) {
        0 => format!("{path}/"),
        1 => path.replacen('/', "//", 1),
        2 => format!("{path}/.."),
        3 => path.replace('e', "%65"),
        4 => format!("/x/..{path}"),
        _ => path,
    };
    path + &q
}

/// A state key the fuzzed log holds.
fn state_key() -> custody_registry::commitment::StateKey {
    custody_registry::commitment::StateKey::NameEntries {
        name: custody_registry::names::ModelName::new("demo/model").unwrap(),
    }
}

/// A valid `POST /state/proofs` body.
fn state_proofs_body() -> Vec<u8> {
    serde_json::json!({ "keys": [hex::encode(state_key().encode())] }).to_string().into_bytes()
}

/// The valid bodies of a route, from real requests.
fn bases(method: &str, route: &str, ctx: &Ctx) -> Vec<Vec<u8>> {
    match (method, route) {
        ("POST", "/statements") => vec![ctx.grant.clone(), ctx.publish.clone(), ctx.access.clone()],
        ("POST", "/entries") => vec![ctx.entry.clone()],
        ("POST", "/state/proofs") => vec![state_proofs_body()],
        ("PUT", "/blobs/{digest}") => vec![ctx.artifact.clone()],
        ("POST", "/add-checkpoint") => ctx.add_bodies.clone(),
        ("POST", "/gossip/checkpoint") => ctx.gossip_bodies.clone(),
        _ => vec![],
    }
}

/// Every case for one route: odd targets, other methods, garbage
/// headers, mutated and oversized bodies, and the statement header.
pub fn endpoint_cases(rng: &mut Rng, method: &str, route: &str, ctx: &Ctx) -> Vec<Case> {
    let bases = bases(method, route, ctx);
    let valid = bases.first().map(Vec::as_slice);
    let hex = &ctx.digest_hex;
    let canonical = match route {
        "/tile/{tail:.*}" => format!("/tile/0/000.p/{}", ctx.size % 256),
        "/entries" if method == "GET" => "/entries?start=0&end=2".into(),
        "/proof/inclusion" | "/proof/bundle" => format!("{route}?index=1"),
        "/proof/consistency" => "/proof/consistency?old=1".into(),
        "/registry/resolve" => "/registry/resolve?ref=demo/model@1".into(),
        "/{origin_hex}/checkpoint" => format!("/{}/checkpoint", ctx.origin_hex),
        r => r
            .replace("{index}", "1")
            .replace("{digest}", &format!("sha256:{hex}"))
            .replace("{org}/{model}", "demo/model")
            .replace("{actor}", "alice")
            .replace("{id}", &"0".repeat(64)),
    };
    let publish_header = (STATEMENT_HEADER.to_owned(), encode_base64(&ctx.publish).into_bytes());
    let auth: Vec<(String, Vec<u8>)> = match (method, route) {
        ("PUT", "/blobs/{digest}") => vec![publish_header.clone()],
        ("GET", "/blobs/{digest}") => {
            vec![(STATEMENT_HEADER.to_owned(), encode_base64(&ctx.access).into_bytes())]
        }
        _ => vec![],
    };
    let mut cases = Vec::new();
    let n_targets = if route.contains('{') || route.starts_with("/proof") || route.contains("resolve") {
        100
    } else {
        12
    };
    for _ in 0..n_targets {
        let t = target(rng, method, route, ctx);
        cases.push(case(format!("target {t}"), request(method, &t, &auth, valid)));
    }
    for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"] {
        let n = rng.below(256);
        let body = rng.bytes(n);
        cases.push(case(format!("method {m}"), request(m, &canonical, &auth, Some(&body))));
    }
    for _ in 0..8 {
        let mut headers = auth.clone();
        headers.extend(garbage_headers(rng));
        let big = headers.iter().any(|(_, v)| v.len() > 1000);
        let raw = request(method, &canonical, &headers, valid);
        cases.push(if big {
            lenient("garbage headers (big)", raw, false)
        } else {
            case("garbage headers", raw)
        });
    }
    for base in &bases {
        let mut variants = mutations(rng, base, 30, 25);
        if route.contains("checkpoint") {
            variants.extend(line_mutations(rng, base));
        }
        if route == "/statements" {
            let payload = payload_of(base);
            variants
                .extend(json_mutations(rng, &payload).into_iter().map(|(l, p)| (l, with_payload(base, &p))));
        }
        for (label, body) in variants {
            cases.push(case(format!("body {label}"), request(method, &canonical, &auth, Some(&body))));
        }
    }
    if method != "GET" {
        for n in [70_000, 2 << 20] {
            let raw = request(method, &canonical, &auth, Some(&rng.bytes(n)));
            cases.push(lenient(format!("{n}-byte body"), raw, false));
        }
    }
    if route == "/blobs/{digest}" {
        cases.extend(statement_header_cases(rng, method, &canonical, ctx));
    }
    if (method, route) == ("PUT", "/blobs/{digest}") {
        let t = &canonical;
        let h = &publish_header;
        let mut raw =
            format!("PUT {t} HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n").into_bytes();
        raw.extend(
            format!("{}: {}\r\n\r\n5\r\nhello\r\n0\r\n\r\n", h.0, String::from_utf8_lossy(&h.1)).as_bytes(),
        );
        cases.push(case("chunked upload without Content-Length", raw));
        for (cl, half) in [("2000000000000", false), ("4000", true), ("abc", false), ("-5", false)] {
            let mut raw =
                format!("PUT {t} HTTP/1.1\r\nConnection: close\r\nContent-Length: {cl}\r\n").into_bytes();
            raw.extend(format!("{}: {}\r\n\r\n", h.0, String::from_utf8_lossy(&h.1)).as_bytes());
            raw.extend_from_slice(&ctx.artifact[..100]);
            cases.push(if cl == "2000000000000" {
                case(format!("Content-Length {cl}"), raw)
            } else {
                lenient(format!("Content-Length {cl}"), raw, half)
            });
        }
    }
    cases
}

/// `Custody-Statement` headers: other statements, mutated envelopes,
/// mutated base64 text, duplicates and a huge one.
fn statement_header_cases(rng: &mut Rng, method: &str, target: &str, ctx: &Ctx) -> Vec<Case> {
    let body = (method == "PUT").then_some(ctx.artifact.as_slice());
    let own = if method == "PUT" { &ctx.publish } else { &ctx.access };
    let mut values: Vec<(String, Vec<u8>)> = vec![
        ("grant statement".into(), encode_base64(&ctx.grant).into_bytes()),
        ("publish statement".into(), encode_base64(&ctx.publish).into_bytes()),
        ("access statement".into(), encode_base64(&ctx.access).into_bytes()),
        ("raw envelope JSON".into(), own.clone()),
        ("empty".into(), Vec::new()),
        ("base64url".into(), encode_base64(own).replace('+', "-").replace('/', "_").into_bytes()),
        ("unpadded".into(), encode_base64(own).trim_end_matches('=').as_bytes().to_vec()),
    ];
    for (label, env) in mutations(rng, own, 15, 15) {
        values.push((format!("envelope {label}"), encode_base64(&env).into_bytes()));
    }
    for (label, payload) in json_mutations(rng, &payload_of(own)) {
        values.push((format!("payload {label}"), encode_base64(&with_payload(own, &payload)).into_bytes()));
    }
    for (label, b64) in mutations(rng, encode_base64(own).as_bytes(), 10, 10) {
        values.push((format!("base64 text {label}"), b64));
    }
    let mut cases: Vec<Case> = values
        .into_iter()
        .map(|(label, v)| {
            // Control bytes end the header line early: malformed HTTP.
            let clean = v.iter().all(|&b| b >= 0x20 && b != 0x7f) && v.len() < 8000;
            let raw = request(method, target, &[(STATEMENT_HEADER.to_owned(), v)], body);
            if clean {
                case(format!("statement header: {label}"), raw)
            } else {
                lenient(format!("statement header: {label}"), raw, false)
            }
        })
        .collect();
    let header = (STATEMENT_HEADER.to_owned(), encode_base64(own).into_bytes());
    cases.push(case("statement header twice", request(method, target, &[header.clone(), header], body)));
    let huge = (STATEMENT_HEADER.to_owned(), vec![b'A'; 100_000]);
    cases.push(lenient("100 kB statement header", request(method, target, &[huge], body), false));
    cases
}

/// Protocol-level garbage: not HTTP, unfinished, contradictory framing.
pub fn protocol_cases(rng: &mut Rng) -> Vec<Case> {
    let close = "Connection: close\r\n";
    let mut raws: Vec<(String, Vec<u8>, bool)> = vec![
        ("not HTTP".into(), b"GARBAGE\r\n\r\n".to_vec(), false),
        ("random bytes".into(), rng.bytes(300), true),
        ("unfinished head".into(), b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec(), true),
        ("HTTP/9.9".into(), format!("GET /health HTTP/9.9\r\n{close}\r\n").into_bytes(), false),
        (
            "20 kB path".into(),
            format!("GET /{} HTTP/1.1\r\n{close}\r\n", "a".repeat(20_000)).into_bytes(),
            false,
        ),
        (
            "header without colon".into(),
            format!("GET /health HTTP/1.1\r\nNoColon\r\n{close}\r\n").into_bytes(),
            false,
        ),
        (
            "300 headers".into(),
            format!("GET /health HTTP/1.1\r\n{}{close}\r\n", "X-H: v\r\n".repeat(300)).into_bytes(),
            false,
        ),
        (
            "70 kB header".into(),
            format!("GET /health HTTP/1.1\r\nX-Big: {}\r\n{close}\r\n", "a".repeat(70_000)).into_bytes(),
            false,
        ),
        ("NUL in path".into(), format!("GET /he\0alth HTTP/1.1\r\n{close}\r\n").into_bytes(), false),
        (
            "absolute URI".into(),
            format!("GET http://127.0.0.1/health HTTP/1.1\r\n{close}\r\n").into_bytes(),
            false,
        ),
        ("HTTP/1.0 without Host".into(), b"GET /health HTTP/1.0\r\n\r\n".to_vec(), false),
        ("CONNECT".into(), format!("CONNECT 127.0.0.1:1 HTTP/1.1\r\n{close}\r\n").into_bytes(), false),
        ("asterisk target".into(), format!("OPTIONS * HTTP/1.1\r\n{close}\r\n").into_bytes(), false),
        (
            "invalid UTF-8 query".into(),
            [b"GET /health?\xff\xfe HTTP/1.1\r\n".as_slice(), close.as_bytes(), b"\r\n"].concat(),
            false,
        ),
        (
            "pipelined".into(),
            format!(
                "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /checkpoint HTTP/1.1\r\nHost: x\r\n{close}\r\n"
            )
            .into_bytes(),
            false,
        ),
    ];
    for path in ["/statements", "/add-checkpoint", "/gossip/checkpoint", "/entries"] {
        let head = |h: &str| format!("POST {path} HTTP/1.1\r\n{close}{h}\r\n");
        raws.extend([
            (
                format!("{path}: body shorter than Content-Length"),
                (head("Content-Length: 100\r\n") + "abc").into_bytes(),
                true,
            ),
            (
                format!("{path}: bad chunk size"),
                (head("Transfer-Encoding: chunked\r\n") + "zz\r\nabc\r\n0\r\n\r\n").into_bytes(),
                false,
            ),
            (
                format!("{path}: unfinished chunks"),
                (head("Transfer-Encoding: chunked\r\n") + "5\r\nab").into_bytes(),
                true,
            ),
            (format!("{path}: negative length"), head("Content-Length: -1\r\n").into_bytes(), false),
            (
                format!("{path}: two lengths"),
                (head("Content-Length: 3\r\nContent-Length: 5\r\n") + "abcde").into_bytes(),
                false,
            ),
            (
                format!("{path}: 2^64 length"),
                head("Content-Length: 18446744073709551616\r\n").into_bytes(),
                false,
            ),
            (
                format!("{path}: length and chunked"),
                (head("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n") + "3\r\nabc\r\n0\r\n\r\n")
                    .into_bytes(),
                false,
            ),
            (
                format!("{path}: Expect 100-continue, no body"),
                head("Expect: 100-continue\r\nContent-Length: 10\r\n").into_bytes(),
                true,
            ),
        ]);
    }
    raws.into_iter().map(|(label, raw, half)| lenient(label, raw, half)).collect()
}
