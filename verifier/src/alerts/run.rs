//! The `custody monitor --rules` loop: verify each new checkpoint, read
//! the new entries verified against it, evaluate the rules, commit the
//! alerts to the outbox with the cursor, and let every sink drain its
//! queue on its own thread.
//!
//! The first start learns from the whole history before the current
//! checkpoint without alerting (the baseline of the learned rules), unless
//! `--from-start`, which alerts on the history too.

use std::time::{Duration, Instant};

use custody_registry::leaf::LogLeaf;
use custody_registry::statement::SignedStatement;

use crate::alerts::config::Config;
use crate::alerts::deliver::{drain, Signal, Sink};
use crate::alerts::evaluate::evaluate;
use crate::alerts::hold::HoldSink;
use crate::alerts::outbox::{State, Store, HOLD_QUEUE};
use crate::alerts::{Alert, Position};
use crate::error::Result;
use crate::home::Home;
use crate::keyfile::load_signer;
use crate::monitor::verified_pages;
use crate::trust::{Trust, Trusted};

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Between two checkpoint polls.
    pub interval: Duration,
    /// One pass, then deliver what is queued and exit.
    pub once: bool,
    /// On the first start, alert on the history too (no baseline).
    pub from_start: bool,
    /// With `once`: how long the sinks may keep trying before the monitor
    /// exits (undelivered alerts stay queued for the next run).
    pub deliver_timeout: Duration,
}

/// Runs the monitor with `cfg` (see the module docs). Returns after one
/// pass with `once`; otherwise only on an error (exit 2 for a log that
/// lies, 3 for an inconsistent checkpoint).
pub fn run(trust: &Trust, home: &Home, cfg: &Config, opts: &RunOptions) -> Result<()> {
    let t = trust.refresh()?;
    let stem = home.checkpoint_file(&t.checkpoint.origin).file_name().unwrap_or_default().to_owned();
    let store = Store::new(home.state_dir.join("alerts").join(stem))?;
    let mut state = match store.load()? {
        Some(s) => s,
        None => {
            // Saved at once, so the baseline ends where the first start
            // found the log even if that pass reads nothing.
            let s = State {
                cursor: 0,
                baseline_end: if opts.from_start { 0 } else { t.checkpoint.size },
                ..State::default()
            };
            store.commit(&s, &[])?;
            s
        }
    };
    store.recover(state.cursor)?;
    let mut sinks =
        cfg.sinks.iter().map(|c| Sink::new(c, store.queue(&c.name.0))).collect::<Result<Vec<_>>>()?;
    let mut holder = None;
    if let Some(h) = &cfg.hold {
        let signer = load_signer(&h.key)?;
        holder = Some(signer.actor().as_str().to_owned());
        let target = HoldSink::new(trust, home, signer, h.reason.clone(), HOLD_WAIT);
        let backoff = (Duration::from_secs(1), Duration::from_secs(300));
        sinks.push(Sink::with_target(
            HOLD_QUEUE,
            store.queue(HOLD_QUEUE),
            Box::new(target),
            backoff.0,
            backoff.1,
        ));
    }
    let routes = Routes { all: cfg.sinks.iter().map(|c| c.name.0.clone()).collect(), holder };
    let signal = Signal::default();
    std::thread::scope(|s| {
        let signal = &signal;
        let workers: Vec<_> = sinks.iter().map(|sink| s.spawn(move || drain(sink, signal))).collect();
        let result = follow(trust, cfg, &store, &mut state, t, opts, &routes, signal);
        match &result {
            Ok(()) => signal.finish(Instant::now() + opts.deliver_timeout),
            Err(_) => signal.stop(),
        }
        for (sink, w) in sinks.iter().zip(workers) {
            let left = w.join().unwrap_or(0);
            if left > 0 {
                tracing::warn!(sink = %sink.name, "{left} alerts still queued; the next run delivers them");
                eprintln!("custody monitor: {left} alerts still queued for sink {}", sink.name);
            }
        }
        result
    })
}

#[allow(clippy::too_many_arguments)]
fn follow(
    trust: &Trust,
    cfg: &Config,
    store: &Store,
    state: &mut State,
    first: Trusted,
    opts: &RunOptions,
    routes: &Routes,
    signal: &Signal,
) -> Result<()> {
    let mut t = first;
    loop {
        pass(trust, cfg, store, state, &t, routes, signal)?;
        if opts.once {
            return Ok(());
        }
        std::thread::sleep(opts.interval);
        t = trust.refresh()?;
    }
}

/// Where alerts go: every configured sink by default, and whose
/// statements never ask for holds (the hold key's actor).
pub struct Routes {
    /// Every configured sink.
    pub all: Vec<String>,
    /// The actor of the `[hold]` key.
    pub holder: Option<String>,
}

/// How long a hold waits for a checkpoint covering it.
const HOLD_WAIT: Duration = Duration::from_secs(60);

/// Evaluates the entries from the cursor to the checkpoint `t`, a page at
/// a time, committing each page's alerts with the advanced cursor.
pub fn pass(
    trust: &Trust,
    cfg: &Config,
    store: &Store,
    state: &mut State,
    t: &Trusted,
    routes: &Routes,
    signal: &Signal,
) -> Result<()> {
    let (size, origin) = (t.checkpoint.size, t.checkpoint.origin.as_str());
    verified_pages(trust, t, state.cursor, &mut |first, entries| {
        let mut alerts = Vec::new();
        for (index, entry) in (first..).zip(entries) {
            let Ok(LogLeaf::Statement(leaf)) = LogLeaf::decode(entry) else { continue };
            let Ok(s) = SignedStatement::parse(leaf.envelope) else { continue };
            let alerting = index >= state.baseline_end;
            let at = Position { index, checkpoint_size: size, received_ms: leaf.receive_time_ms, origin };
            for hit in evaluate(cfg, &mut state.learned, &s, alerting) {
                let alert = Alert::new(&hit, &s, at);
                let mut queues = hit.sinks.clone().unwrap_or_else(|| routes.all.clone());
                let own = routes.holder.as_deref() == Some(alert.actor.as_str());
                if hit.hold && !own && HoldSink::target(&alert).is_some() {
                    queues.push(HOLD_QUEUE.to_owned());
                }
                alerts.push((alert, queues));
            }
        }
        state.cursor = first + entries.len() as u64;
        store.commit(state, &alerts)?;
        if !alerts.is_empty() {
            signal.wake();
        }
        Ok(())
    })?;
    Ok(())
}
