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

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
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
    let first_end = (start + STEP).min(end);
    let first = state.blocking(move |store| Ok(store.entries(start, first_end)?)).await?;
    if first.len() as u64 != first_end - start {
        return Err(ApiError::Internal(format!(
            "store returned {} entries for [{start}, {first_end})",
            first.len()
        )));
    }
    let (tx, rx) = mpsc::channel(PIPE_DEPTH);
    // The producer's failures are logged under this request's id.
    tokio::spawn(custody_service::request_id::scoped(produce(state, start, end, first, tx)));
    Ok(HttpResponse::Ok().content_type("application/json").streaming(Chunks { rx }))
}

/// Writes the page's JSON into `tx` a step at a time.
async fn produce(
    state: web::Data<AppState>,
    start: u64,
    end: u64,
    mut batch: Vec<Vec<u8>>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut page = Page::default();
    let mut chunk = format!("{{\"start\":{start},\"entries\":[").into_bytes();
    let mut next = start;
    loop {
        let mut full = false;
        for entry in &batch {
            if !page.push(entry, &mut chunk) {
                full = true;
                break;
            }
            next += 1;
        }
        if full || next >= end {
            break;
        }
        if !send(&tx, std::mem::take(&mut chunk)).await {
            return; // the client is gone or stalled
        }
        let step_end = (next + STEP).min(end);
        batch = match state.blocking(move |store| Ok(store.entries(next, step_end)?)).await {
            Ok(b) if b.len() as u64 == step_end - next => b,
            Ok(b) => {
                return fail(&tx, format!("store returned {} entries for [{next}, {step_end})", b.len()))
                    .await
            }
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
    /// Appends `entry` to `chunk` if the page has room for it (the first
    /// entry always fits); returns false, appending nothing, if not.
    fn push(&mut self, entry: &[u8], chunk: &mut Vec<u8>) -> bool {
        let b64 = encode_base64(entry);
        if self.count > 0 && self.bytes + b64.len() + 3 > MAX_ENTRY_RANGE_BYTES {
            return false;
        }
        if self.count > 0 {
            chunk.push(b',');
        }
        chunk.push(b'"');
        chunk.extend_from_slice(b64.as_bytes());
        chunk.push(b'"');
        self.bytes += b64.len() + 3;
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
        let big = vec![7u8; 60_000];
        let mut page = Page::default();
        let mut chunk = Vec::new();
        let mut n = 0;
        while page.push(&big, &mut chunk) {
            n += 1;
        }
        assert_eq!(n, MAX_ENTRY_RANGE_BYTES / (encode_base64(&big).len() + 3));
        assert!(page.bytes <= MAX_ENTRY_RANGE_BYTES && chunk.len() <= MAX_ENTRY_RANGE_BYTES);
        let mut one = Page::default();
        assert!(one.push(&vec![1u8; MAX_ENTRY_RANGE_BYTES], &mut Vec::new()), "the first entry always fits");
    }
}
