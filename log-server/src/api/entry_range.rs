//! `GET /entries?start=S&end=E`: a page of entries as JSON base64, capped
//! in entries *and* in bytes, and streamed.
//!
//! The byte cap matters because entries may be up to 64 KiB: 1000 of them
//! would be an 87 MB body, and a few slow readers of such pages would hold
//! gigabytes. A page therefore stops before the base64 of its entries
//! passes [`MAX_ENTRY_RANGE_BYTES`] (it always holds at least one entry),
//! and `end` in the answer says where it stopped, so clients page on from
//! there. The body is produced a few entries at a time as the client reads
//! it: a reader that stalls holds at most `PIPE_DEPTH` (two) small chunks, and
//! no thread (each chunk is read on the blocking pool, then the pool is
//! given back while waiting for the client).
//!
//! Entries are read in aligned steps of `STEP`, and each step's base64 is
//! kept in the tile cache once all its entries are durable: entries never
//! change, so the pages every monitor reads (and an attacker repeats) are
//! served from memory without a read or an encoding. The bytes of each
//! step are charged to the client address's byte budget
//! (`--read-kib-rate`); when it runs out the page ends early (`end` says
//! where, as for the byte cap) and the address's reads get 429 until the
//! debt is paid off.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use custody_service::guard::AddressGuard;
use custody_standards::encoding::encode_base64;
use futures_core::Stream;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::read::missing;
use super::{parse_u64, ApiError, AppState};

/// Most entries returned by one `GET /entries?start=&end=`.
pub const MAX_ENTRY_RANGE: u64 = 1000;
/// Most bytes of base64 entries in one page (1 MiB).
pub const MAX_ENTRY_RANGE_BYTES: usize = 1 << 20;
/// Entries read from the store per step.
const STEP: u64 = 8;
/// Chunks queued ahead of a slow reader.
const PIPE_DEPTH: usize = 2;
/// A reader that takes nothing for this long has its response cut.
const SEND_IDLE: Duration = Duration::from_secs(60);

/// Query of `GET /entries`.
#[derive(Deserialize)]
pub struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
}

/// `GET /entries?start=S&end=E`: entries from `S` up to `min(E, tree
/// size)`, at most [`MAX_ENTRY_RANGE`] and about [`MAX_ENTRY_RANGE_BYTES`]
/// of base64; `end` in the answer is where the page stopped.
pub async fn entry_range(
    req: HttpRequest,
    query: web::Query<RangeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let start = parse_u64("start", query.start.as_deref().ok_or_else(|| missing("start"))?)?;
    let end = parse_u64("end", query.end.as_deref().ok_or_else(|| missing("end"))?)?;
    if start >= end {
        return Err(ApiError::BadRequest(format!("start {start} must be below end {end}")));
    }
    if end - start > MAX_ENTRY_RANGE {
        return Err(ApiError::BadRequest(format!("at most {MAX_ENTRY_RANGE} entries per request")));
    }
    let size = state.seq.tree_size();
    if start >= size {
        return Err(ApiError::NotFound(format!("entry {start} does not exist (tree size {size})")));
    }
    let end = end.min(size);
    // The first step is read before answering, so a storage failure is
    // still a clean 500 rather than a cut body.
    let first = encoded_step(&state, start / STEP, size).await?;
    let charge = ByteCharge {
        guard: req.app_data::<web::Data<AddressGuard>>().cloned(),
        peer: AddressGuard::peer(&req),
    };
    let (tx, rx) = mpsc::channel(PIPE_DEPTH);
    // The producer's failures are logged under this request's id.
    tokio::spawn(custody_service::request_id::scoped(produce(state, start, end, size, first, charge, tx)));
    Ok(HttpResponse::Ok().content_type("application/json").streaming(Chunks { rx }))
}

/// One step's entries, each as its JSON string.
type EncodedStep = Arc<Vec<Box<[u8]>>>;

/// Bytes of encoded steps kept by default (a few pages of the largest
/// entries, hundreds of pages of typical ones).
pub const DEFAULT_ENTRY_STEP_CACHE_BYTES: usize = 16 << 20;

/// A bounded map of complete steps' encoded entries. As in the tile cache,
/// eviction is arbitrary: a dropped step is cheap to read again.
pub struct EntryStepCache {
    max_bytes: usize,
    inner: Mutex<(usize, HashMap<u64, EncodedStep>)>,
}

impl EntryStepCache {
    /// A cache holding at most `max_bytes` of encoded entries (0 disables it).
    pub fn new(max_bytes: usize) -> Self {
        EntryStepCache { max_bytes, inner: Mutex::new((0, HashMap::new())) }
    }

    fn weight(step: &EncodedStep) -> usize {
        step.iter().map(|e| e.len()).sum()
    }

    fn get(&self, k: u64) -> Option<EncodedStep> {
        self.inner.lock().ok()?.1.get(&k).cloned()
    }

    fn put(&self, k: u64, step: EncodedStep) {
        let weight = Self::weight(&step);
        if weight > self.max_bytes {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        let (bytes, map) = &mut *inner;
        while *bytes + weight > self.max_bytes {
            let Some(victim) = map.keys().next().copied() else { break };
            if let Some(old) = map.remove(&victim) {
                *bytes -= Self::weight(&old);
            }
        }
        *bytes += weight;
        if let Some(old) = map.insert(k, step) {
            *bytes -= Self::weight(&old);
        }
    }
}

/// Where the bytes of a page are charged.
struct ByteCharge {
    guard: Option<web::Data<AddressGuard>>,
    peer: Option<IpAddr>,
}

impl ByteCharge {
    /// Charges `bytes`; false if the client's byte budget is spent.
    fn charge(&self, bytes: usize) -> bool {
        match (&self.guard, self.peer) {
            (Some(guard), Some(peer)) => guard.limits.charge_bytes(peer, bytes),
            _ => true,
        }
    }
}

/// The entries of step `k` (indices `[k*STEP, (k+1)*STEP)` below `size`),
/// each as its JSON string (base64 in quotes), from the cache when the
/// step is complete and was read before.
async fn encoded_step(state: &web::Data<AppState>, k: u64, size: u64) -> Result<EncodedStep, ApiError> {
    let (from, to) = (k * STEP, ((k + 1) * STEP).min(size));
    let complete = to == (k + 1) * STEP;
    if complete {
        if let Some(step) = state.entry_steps.get(k) {
            return Ok(step);
        }
    }
    let step = state
        .blocking(move |store| {
            let entries = store.entries(from, to)?;
            if entries.len() as u64 != to - from {
                return Err(ApiError::Internal(format!(
                    "store returned {} entries for [{from}, {to})",
                    entries.len()
                )));
            }
            Ok(entries
                .iter()
                .map(|e| format!("\"{}\"", encode_base64(e)).into_bytes().into_boxed_slice())
                .collect())
        })
        .await?;
    let step = Arc::new(step);
    if complete {
        state.entry_steps.put(k, Arc::clone(&step));
    }
    Ok(step)
}

/// Writes the page's JSON into `tx` a step at a time.
async fn produce(
    state: web::Data<AppState>,
    start: u64,
    end: u64,
    size: u64,
    mut step: EncodedStep,
    charge: ByteCharge,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut page = Page::default();
    let mut chunk = format!("{{\"start\":{start},\"entries\":[").into_bytes();
    let mut next = start;
    loop {
        let mut full = false;
        let skip = (next % STEP) as usize;
        for quoted in step.iter().skip(skip) {
            if next >= end || !page.push(quoted, &mut chunk) {
                full = true;
                break;
            }
            next += 1;
        }
        let over_budget = !charge.charge(chunk.len());
        if full || next >= end || over_budget {
            break;
        }
        if !send(&tx, std::mem::take(&mut chunk)).await {
            return; // the client is gone or stalled
        }
        step = match encoded_step(&state, next / STEP, size).await {
            Ok(s) => s,
            Err(e) => return fail(&tx, e.to_string()).await,
        };
    }
    chunk.extend_from_slice(format!("],\"end\":{next}}}").as_bytes());
    let _ = send(&tx, chunk).await;
}

/// The byte budget of one page.
#[derive(Default)]
struct Page {
    count: u64,
    bytes: usize,
}

impl Page {
    /// Appends `quoted` (an entry's base64 in quotes) to `chunk` if the
    /// page has room for it (the first entry always fits); returns false,
    /// appending nothing, if not.
    fn push(&mut self, quoted: &[u8], chunk: &mut Vec<u8>) -> bool {
        if self.count > 0 && self.bytes + quoted.len() + 1 > MAX_ENTRY_RANGE_BYTES {
            return false;
        }
        if self.count > 0 {
            chunk.push(b',');
        }
        chunk.extend_from_slice(quoted);
        self.bytes += quoted.len() + 1;
        self.count += 1;
        true
    }
}

async fn send(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>, chunk: Vec<u8>) -> bool {
    if chunk.is_empty() {
        return true;
    }
    matches!(tokio::time::timeout(SEND_IDLE, tx.send(Ok(Bytes::from(chunk)))).await, Ok(Ok(())))
}

/// Ends the body with an error: the client sees a cut response, never a
/// well-formed page with entries missing.
async fn fail(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>, detail: String) {
    let reference = custody_service::internal_error::reference();
    tracing::error!(reference = reference.as_str(), error = detail.as_str(), "entry range failed mid-stream");
    let _ = tx.send(Err(std::io::Error::other(format!("entry range failed (reference {reference})")))).await;
}

/// The receiving end, as a response body.
struct Chunks {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_at_the_byte_cap_but_holds_one_entry() {
        let big = format!("\"{}\"", encode_base64(&[7u8; 60_000])).into_bytes();
        let mut page = Page::default();
        let mut chunk = Vec::new();
        let mut n = 0;
        while page.push(&big, &mut chunk) {
            n += 1;
        }
        assert_eq!(n, MAX_ENTRY_RANGE_BYTES / (big.len() + 1));
        assert!(page.bytes <= MAX_ENTRY_RANGE_BYTES && chunk.len() <= MAX_ENTRY_RANGE_BYTES);
        let cache = EntryStepCache::new(100);
        for k in 0..10 {
            cache.put(k, Arc::new(vec![vec![0u8; 40].into_boxed_slice()]));
            let inner = cache.inner.lock().unwrap();
            assert!(inner.0 <= 100);
        }
        assert!(cache.get(9).is_some());
        let mut one = Page::default();
        assert!(one.push(&vec![1u8; MAX_ENTRY_RANGE_BYTES], &mut Vec::new()), "the first entry always fits");
    }
}
