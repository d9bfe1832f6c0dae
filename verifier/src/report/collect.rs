//! Collecting a report's entries with the proof that none is missing: a
//! full audit for the whole registry, the committed entries chain for one
//! subject (see the parent module).

use std::time::Duration;

use custody_registry::leaf::LogLeaf;
use custody_registry::log_event::SignedLogEvent;
use custody_registry::statement::SignedStatement;

use super::{note_version, AuditState, Completeness, LogState, Method, Range, Versions};
use crate::audit::{audit, audit_dir, audit_with, AuditOptions, AuditReport};
use crate::client::MAX_CHECKPOINT;
use crate::entries::{ProvenLogEvent, ProvenStatement};
use crate::error::{Error, Result};
use crate::history::{proven_entries, Subject};
use crate::home::{read_capped, Home};
use crate::trust::{Trust, Trusted};

/// Entries proven complete, with how, ready for [`super::build`].
#[derive(Debug, Clone)]
pub struct Collected {
    /// `None` for the whole registry.
    pub subject: Option<Subject>,
    /// The checkpoint everything was proven against.
    pub log: LogState,
    /// How the list was proven complete.
    pub completeness: Completeness,
    /// The audit the verdicts rest on.
    pub audit: AuditState,
    /// The proven statements (for the registry, only those in the range).
    pub proven: Vec<ProvenStatement>,
    /// The log's own events (integrity violations), verified with the
    /// log's key (for the registry, only those in the range).
    pub log_events: Vec<ProvenLogEvent>,
    /// Versions published, over everything collected.
    pub versions: Versions,
}

/// Refuses a report on a log whose audit found a violation.
fn clean(r: &AuditReport) -> Result<()> {
    match &r.violation {
        None => Ok(()),
        Some(v) => Err(Error::verify(format!(
            "report refused: the audit of the log up to size {} found a violation at entry {}: {}",
            r.size, v.index, v.problem
        ))),
    }
}

/// The whole registry: every entry of the log up to the trusted checkpoint,
/// authenticated and replayed by a full audit (resumed from its saved
/// state when that checks out), keeping the statements in `range`.
pub fn collect_registry(trust: &Trust, home: &Home, opts: &AuditOptions, range: &Range) -> Result<Collected> {
    let mut proven = Vec::new();
    let mut log_events = Vec::new();
    let mut versions = Versions::new();
    let mut next = 0u64;
    let mut statements = 0u64;
    let mut broken: Option<String> = None;
    let report = {
        let mut sink = |index: u64, leaf: &[u8]| {
            if index != next && broken.is_none() {
                broken = Some(format!("the audit handed entry {index} where {next} was due"));
            }
            next = index + 1;
            match LogLeaf::decode(leaf) {
                Ok(LogLeaf::Commitment(_)) => {}
                // The audit verifies its signature with the log's key.
                Ok(LogLeaf::LogEvent(l)) => match SignedLogEvent::parse(l.envelope) {
                    Ok(signed) => {
                        let e = ProvenLogEvent { index, received_ms: l.receive_time_ms, event: signed.event };
                        if range.contains_times(e.event.time.unix_secs(), e.received_ms) {
                            log_events.push(e);
                        }
                    }
                    Err(e) => {
                        broken.get_or_insert_with(|| format!("entry {index}: {e}"));
                    }
                },
                Ok(LogLeaf::Statement(l)) => match SignedStatement::parse(l.envelope) {
                    Ok(signed) => {
                        statements += 1;
                        let p = ProvenStatement { index, received_ms: l.receive_time_ms, signed };
                        note_version(&mut versions, &p);
                        if range.contains(&p) {
                            proven.push(p);
                        }
                    }
                    Err(e) => {
                        broken.get_or_insert_with(|| format!("entry {index}: {e}"));
                    }
                },
                Err(e) => {
                    broken.get_or_insert_with(|| format!("entry {index}: {e}"));
                }
            }
        };
        audit_with(trust, home, opts, Some(&mut sink))?
    };
    clean(&report)?;
    // After a clean audit neither can happen; checked so that the report
    // never rests on entries it did not see.
    if let Some(why) = broken {
        return Err(Error::verify(format!("report refused: {why}")));
    }
    if next != report.size {
        return Err(Error::verify(format!(
            "report refused: the audit covered {} entries, the report saw {next}",
            report.size
        )));
    }
    let resumed = if report.replay_from > 0 {
        format!(
            " (entries below {} by earlier audits of this client, whose saved replay state matched the state the log committed to there)",
            report.replay_from
        )
    } else {
        String::new()
    };
    let explanation = format!(
        "A full audit fetched every entry of the log up to size {size}, checked each against the tree of the cosigned checkpoint (root {root}), and replayed all {statements} statements{resumed}: signatures, the signer's key and role at that point, the registry's rules and every state commitment, without a finding. The report is made of exactly the entries that audit authenticated.",
        size = report.size,
        root = report.root,
    );
    Ok(Collected {
        subject: None,
        log: LogState {
            origin: report.origin.clone(),
            size: report.size,
            root: report.root.clone(),
            cosigners: report.cosigners.clone(),
            consistency_verified: true,
        },
        completeness: Completeness { method: Method::Audit, entries: report.size, last: None, explanation },
        audit: AuditState {
            audited_size: Some(report.size),
            state_root: report.state_root.clone(),
            replay_from: Some(report.replay_from),
        },
        proven,
        log_events,
        versions,
    })
}

/// One subject: its entries, proven complete by the entries chain of the
/// committed registry state. With `audit`, a full audit runs first so
/// that every row is `audited`; otherwise the last clean audit saved in
/// `home` (if any) vouches for the entries below its size.
pub fn collect_subject(
    trust: &Trust,
    home: &Home,
    subject: &Subject,
    timeout: Duration,
    audit_opts: Option<&AuditOptions>,
) -> Result<Collected> {
    let ran = match audit_opts {
        Some(o) => {
            let r = audit(trust, home, o)?;
            clean(&r)?;
            Some(r)
        }
        None => None,
    };
    let entries = proven_entries(trust, subject, timeout)?;
    let (checkpoint, proven, log_events) = (entries.checkpoint, entries.statements, entries.log_events);
    let mut versions = Versions::new();
    for p in &proven {
        note_version(&mut versions, p);
    }
    let audit_state = match &ran {
        Some(r) => AuditState {
            audited_size: Some(r.size),
            state_root: r.state_root.clone(),
            replay_from: Some(r.replay_from),
        },
        None => AuditState {
            audited_size: last_audit(trust, home, &checkpoint),
            state_root: None,
            replay_from: None,
        },
    };
    let label = subject.label();
    let last = proven.iter().map(|p| p.index).chain(log_events.iter().map(|e| e.index)).max();
    let n = proven.len() + log_events.len();
    let size = checkpoint.checkpoint.size;
    let explanation = format!(
        "The log's list of the {n} entries about {label}{last_words} reproduces the entries chain (count and hash chain of their indexes) that the registry state committed at the end of the checkpoint of size {size} holds for it, verified with a state proof against that commitment; a list that omits, adds or reorders an entry cannot. Each entry was then proven included under the checkpoint and checked to be about {label}.",
        last_words = last.map(|l| format!(" (the last at entry {l})")).unwrap_or_default(),
    );
    let c = &checkpoint.checkpoint;
    Ok(Collected {
        subject: Some(subject.clone()),
        log: LogState {
            origin: c.origin.clone(),
            size,
            root: c.root.to_base64(),
            cosigners: checkpoint.cosigners.clone(),
            consistency_verified: true,
        },
        completeness: Completeness { method: Method::EntriesChain, entries: n as u64, last, explanation },
        audit: audit_state,
        proven,
        log_events,
        versions,
    })
}

/// The size of the last clean audit this client saved for the log of
/// `checkpoint`, if its checkpoint still satisfies the policy. Every
/// checkpoint trusted since was proven consistent with the one before, so
/// the entries below that size are the ones the audit replayed.
fn last_audit(trust: &Trust, home: &Home, checkpoint: &Trusted) -> Option<u64> {
    let file = audit_dir(home, &checkpoint.checkpoint.origin).join("checkpoint");
    let note = read_capped(&file, MAX_CHECKPOINT).ok()?;
    let v = trust.policy().verify_checkpoint(&note).ok()?;
    (v.checkpoint.origin == checkpoint.checkpoint.origin).then_some(v.checkpoint.size)
}
