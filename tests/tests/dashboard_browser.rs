//! The dashboard in a real browser: headless Chromium (Debian's package,
//! `scripts/chromium-install`) runs the browser verifier against the vectors
//! core generates, and the pages of a real deployment, honest and hostile.

use std::path::PathBuf;
use std::sync::Arc;

use custody_testkit::browser::Browser;
use custody_testkit::hostile::{serve, Request, Response};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Serves verify.js, leaf.js, the vector runner and the vector files from
/// the source tree, as files of one origin, with an empty page to run them.
fn serve_vectors() -> String {
    let root = repo();
    serve(Arc::new(move |req: Request| {
        let file = match req.path.as_str() {
            "/" => {
                return Response::new(200, "<!doctype html><title>vectors</title>")
                    .with_header("Content-Type", "text/html")
            }
            "/js/verify.js" => root.join("log-server/ui/js/verify.js"),
            "/js/leaf.js" => root.join("log-server/ui/js/leaf.js"),
            "/vectors.js" => root.join("tests/browser/vectors.js"),
            p => match p.strip_prefix("/vectors/") {
                Some(name) if !name.contains('/') && name.ends_with(".json") => {
                    let s = root.join("standards/tests/vectors").join(name);
                    if s.exists() {
                        s
                    } else {
                        root.join("registry/tests/vectors").join(name)
                    }
                }
                _ => return Response::new(404, "not found"),
            },
        };
        let ty =
            if file.extension().is_some_and(|e| e == "js") { "text/javascript" } else { "application/json" };
        match std::fs::read(&file) {
            Ok(body) => Response::new(200, body).with_header("Content-Type", ty),
            Err(_) => Response::new(404, "not found"),
        }
    }))
}

#[test]
fn the_browser_verifier_agrees_with_core_on_every_vector() {
    let base = serve_vectors();
    let b = Browser::start();
    b.goto(&format!("{base}/"));
    let result = b.run(
        "const v = await import('/js/verify.js');\
         const { runVectors } = await import('/vectors.js');\
         return await runVectors(async (n) => (await fetch('/vectors/' + n)).json(), v);",
        vec![],
    );
    let failures = result["failures"].as_array().expect("the runner reports");
    assert!(
        failures.is_empty(),
        "verify.js disagrees with core:\n{}",
        serde_json::to_string_pretty(failures).unwrap()
    );
    // Every file was read: keys, notes, checkpoints, policies (with quorum
    // tables), 136 valid inclusion proofs and the tampered ones, leaves.
    assert!(result["checked"].as_u64().unwrap() > 600, "{result}");
}
