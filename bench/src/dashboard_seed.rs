//! Seeding a registry log with one model whose dashboard page is long:
//! a publish and `rows - 1` signed accesses of it, each with its own
//! context (environment, pipeline, reason), as an access log of a busy
//! model looks. The server-side figure (time to the page's full HTML)
//! and the browser's (time to first render, verification rate) both
//! measure the page of the model seeded here.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use custody_client::{Client, Request};
use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Pattern};
use custody_registry::registry::Role;
use custody_registry::statement::events::Access;
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::encoding::encode_base64;

use crate::procs::bench_client_config;
use crate::statements::{publish_artifact, random};

/// The seeded model's name; its page is `/ui/models/bench/dashboard`.
pub const SEEDED_MODEL: &str = "bench/dashboard";
/// Largest answer read while seeding.
const MAX_ANSWER: u64 = 1 << 20;

/// What [`seed_model_history`] made.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The model's name.
    pub model: String,
    /// Its dashboard page, relative to the log's URL.
    pub page: String,
    /// Entries about the name: the publish and the accesses.
    pub rows: u64,
    /// The log's tree size once they were all acknowledged.
    pub tree_size: u64,
}

fn text(s: &str) -> anyhow::Result<Text> {
    Text::new(s).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Signs `event` by `who` now with `context` and a fresh nonce.
fn sign_in_context(who: &ActorSigner, context: Context, event: Event) -> anyhow::Result<Vec<u8>> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let time = Timestamp::from_unix_secs(secs).context("clock out of range")?;
    let stmt = Statement::new(who, time, Nonce(random()?), context, event);
    stmt.sign(who).map_err(|e| anyhow::anyhow!("signing: {e}"))
}

async fn post(c: &Client, base: &str, envelope: Vec<u8>) -> anyhow::Result<()> {
    c.fetch(&Request::post(format!("{base}/statements"), envelope, MAX_ANSWER))
        .await
        .context("statement refused")?;
    Ok(())
}

/// Seeds the log at `base` (registry mode; `admin` is its first admin's
/// key) with [`SEEDED_MODEL`] and `rows` entries about it, sent by
/// `concurrency` readers at once. Run it once per log: the name is fixed.
pub async fn seed_model_history(
    base: &str,
    admin: &ActorSigner,
    rows: u64,
    concurrency: usize,
) -> anyhow::Result<Seeded> {
    if rows == 0 {
        bail!("a seeded model has at least its publish");
    }
    let workers = concurrency.max(1);
    let c = Client::new(bench_client_config(None, workers)).context("HTTP client")?;
    let pattern = Pattern::new("bench/*").map_err(|e| anyhow::anyhow!("{e}"))?;
    let actor = |n: String| ActorName::new(&n).map_err(|e| anyhow::anyhow!("actor {n}: {e}"));
    let grant = |to: &ActorSigner, role| crate::statements::grant(to, role, &pattern);
    let reason = text("dashboard bench")?;
    let publisher = ActorSigner::from_seed(&actor("dash-publisher".into())?, &random()?);
    post(
        &c,
        base,
        sign_in_context(admin, Context::reason(reason.clone()), grant(&publisher, Role::Publisher))?,
    )
    .await?;
    let mut readers = Vec::with_capacity(workers);
    for i in 0..workers {
        let r = ActorSigner::from_seed(&actor(format!("dash-reader-{i}"))?, &random()?);
        post(&c, base, sign_in_context(admin, Context::reason(reason.clone()), grant(&r, Role::Reader))?)
            .await?;
        readers.push(r);
    }
    let bytes = b"custody dashboard bench artifact".to_vec();
    let access =
        Arc::new(publish_artifact(&c, base, &publisher, "dashboard bench", SEEDED_MODEL, bytes).await?);
    let accesses = rows - 1;
    let mut tasks = tokio::task::JoinSet::new();
    for (w, who) in readers.into_iter().enumerate() {
        let n = accesses / workers as u64 + u64::from((w as u64) < accesses % workers as u64);
        let (c, base, access) = (c.clone(), base.to_owned(), Arc::clone(&access));
        tasks.spawn(async move { reader(&c, &base, &who, &access, w, n).await });
    }
    let mut tree_size = 0;
    while let Some(done) = tasks.join_next().await {
        tree_size = tree_size.max(done.context("reader task")??);
    }
    Ok(Seeded { model: SEEDED_MODEL.to_owned(), page: format!("/ui/models/{SEEDED_MODEL}"), rows, tree_size })
}

/// `n` accesses by `who`, each with its own context; the highest tree size
/// acknowledged (the entry and its batch's commitment leaf).
async fn reader(
    c: &Client,
    base: &str,
    who: &ActorSigner,
    access: &Access,
    w: usize,
    n: u64,
) -> anyhow::Result<u64> {
    let mut size = 0;
    for i in 0..n {
        let mut context = Context::reason(text(&format!("nightly evaluation {i} of reader {w}"))?);
        context.environment = Some(text(["prod-eu", "prod-us", "staging"][(i % 3) as usize])?);
        context.pipeline = Some(text(&format!("eval#{w}-{i}"))?);
        let envelope = sign_in_context(who, context, Event::Access(access.clone()))?;
        let req = Request::get(format!("{base}/blobs/{}", access.digest), MAX_ANSWER)
            .retry_safe(false)
            .header("custody-statement", &encode_base64(&envelope))?;
        let r = c.fetch(&req).await.context("access refused")?;
        let index: u64 =
            r.header("custody-leaf-index").and_then(|v| v.parse().ok()).context("no leaf index")?;
        size = size.max(index + 2);
    }
    Ok(size)
}

/// [`seed_model_history`] from synchronous code (a test, the suite), with
/// the first admin's key read from `admin_key` (written by
/// `custody-log init`).
pub fn seed_model_history_blocking(
    base: &str,
    admin_key: &std::path::Path,
    rows: u64,
    concurrency: usize,
) -> anyhow::Result<Seeded> {
    let key =
        std::fs::read_to_string(admin_key).with_context(|| format!("reading {}", admin_key.display()))?;
    let admin = ActorSigner::parse(key.trim()).map_err(|e| anyhow::anyhow!("admin key: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(seed_model_history(base, &admin, rows, concurrency))
}
