//! The one place response bodies are read into memory. A declared
//! `Content-Length` over the cap is refused before reading anything, and
//! the body is read chunk by chunk, refusing as soon as the next chunk
//! would pass the cap: a hostile server can make us hold at most `cap`
//! bytes plus one chunk, never what it chooses to send.

use crate::error::ClientError;

/// Reads `resp`'s whole body, refusing one over `cap` bytes.
pub(crate) async fn read_capped(
    resp: &mut reqwest::Response,
    cap: u64,
    what: &str,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::TooLarge { what: what.to_owned(), cap };
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    // Reserve what was declared (within the cap), not more.
    let mut out = Vec::with_capacity(resp.content_length().unwrap_or(0).min(cap).min(1 << 20) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| ClientError::from_reqwest(e, what, timeout))? {
        if out.len() as u64 + chunk.len() as u64 > cap {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
