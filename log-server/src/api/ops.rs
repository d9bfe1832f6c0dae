//! Operational endpoints: `/health` and `/metrics`.

use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};
use custody_service::guard::AddressGuard;

use super::{ApiError, AppState};
use crate::metrics::{gauge, labelled_gauge};

/// `GET /health`: JSON with the sequencer, storage and checkpoint state;
/// 200 when storage answers and the witness quorum is met, 503 otherwise,
/// so a load balancer or orchestrator can act on the status alone.
pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let durable = state.seq.tree_size();
    let storage = state.blocking(|store| Ok(store.tree_size())).await;
    let storage = match storage {
        Ok(Ok(size)) => serde_json::json!({ "ok": true, "tree_size": size }),
        Ok(Err(e)) => serde_json::json!({ "ok": false, "error": e.to_string() }),
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    };
    let checkpoint = serde_json::to_value(state.publisher.health())
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    let storage_ok = storage["ok"].as_bool() == Some(true);
    let quorum_ok = checkpoint.get("quorum_ok").and_then(|v| v.as_bool()).unwrap_or(true);
    let healthy = storage_ok && quorum_ok;
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "sequencer": { "tree_size": durable },
        "storage": storage,
        "checkpoint": checkpoint,
    });
    let mut resp = if healthy { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    Ok(resp.json(body))
}

/// `GET /metrics`: Prometheus text exposition, stored counters plus gauges
/// read at scrape time.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut extra = String::new();
    if let Some(guard) = req.app_data::<web::Data<AddressGuard>>() {
        gauge(
            &mut extra,
            "custody_client_addresses_tracked",
            "Client addresses for which per-address limit state is kept (all budgets together).",
            guard.limits.tracked() as f64,
        );
        let refused: Vec<(&str, f64)> =
            guard.limits.refusals().iter().map(|(code, n)| (*code, *n as f64)).collect();
        labelled_gauge(
            &mut extra,
            "custody_client_limit_refusals",
            "Requests refused by the per-address limits since start, by reason.",
            "reason",
            &refused,
        );
    }
    gauge(&mut extra, "custody_tree_size", "Durable tree size.", state.seq.tree_size() as f64);
    let latest = state.publisher.latest();
    let (published_size, age) = match &latest {
        Some(p) => {
            let age =
                SystemTime::now().duration_since(p.published_at).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            (p.size as f64, age)
        }
        None => (0.0, -1.0),
    };
    gauge(
        &mut extra,
        "custody_published_tree_size",
        "Size of the latest published checkpoint.",
        published_size,
    );
    gauge(
        &mut extra,
        "custody_checkpoint_age_seconds",
        "Seconds since the latest checkpoint was published (-1: none yet).",
        age,
    );
    let health = serde_json::to_value(state.publisher.health()).unwrap_or_default();
    let quorum_ok = health.get("quorum_ok").and_then(|v| v.as_bool()).unwrap_or(true);
    gauge(
        &mut extra,
        "custody_quorum_ok",
        "1 if the latest signed checkpoint met the witness quorum.",
        f64::from(u8::from(quorum_ok)),
    );
    if let Some(m) = state.store.memory_usage() {
        for (name, help, value) in [
            (
                "custody_store_cache_bytes",
                "Bytes in RocksDB's block cache, memtables charged to it included.",
                m.cache,
            ),
            ("custody_store_memtable_bytes", "Bytes of RocksDB memtables.", m.memtables),
            (
                "custody_store_table_reader_bytes",
                "Bytes of RocksDB table readers outside the cache.",
                m.table_readers,
            ),
        ] {
            gauge(&mut extra, name, help, value as f64);
        }
        let sst: Vec<(&str, f64)> = m.sst_bytes.iter().map(|(cf, b)| (*cf, *b as f64)).collect();
        labelled_gauge(
            &mut extra,
            "custody_store_sst_bytes",
            "Bytes of RocksDB table files per column family (write-ahead log excluded).",
            "cf",
            &sst,
        );
    }
    if let Ok(reg) = state.registry() {
        gauge(
            &mut extra,
            "custody_registry_nonces",
            "Nonces remembered for replay protection (the statements of one window).",
            reg.registry.read().nonces_remembered() as f64,
        );
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body({
        state.connections.render_metrics(&mut extra);
        state.metrics.render(&extra)
    }))
}
