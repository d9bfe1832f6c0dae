//! Automatic holds: a rule with `hold = true` queues its alerts for the
//! hold queue as well, which this sink drains by signing a `hold`
//! statement with the `[hold]` key and submitting it to the log, then
//! proving it included like any `custody hold`. The log enforces the
//! hold (423 on tag moves, promotions and accesses of what it covers), and
//! `custody pull` refuses held versions; a `custody release` lifts it.
//!
//! What is held: the version the alerting entry names (an access, a
//! publish, a promotion...), else its whole name (a tag move). The hold's
//! reason names the alert id, so the hold's entry points back at the
//! entry that caused it. The statement carries `context.source =
//! custody-monitor`, and alerts on statements signed by the hold key
//! itself never request a hold, so a monitor cannot feed on its own holds.
//!
//! A hold already in force (409) or a name already held (423) counts as
//! delivered; any other refusal (the key lacks the approver or admin role:
//! 403) moves the request to `failed/` and is logged as an error.

use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ModelName, Version};
use custody_registry::statement::events::HoldTarget;
use custody_registry::statement::text::MAX_TEXT_LEN;
use custody_registry::statement::Event;
use custody_standards::Policy;

use crate::alerts::deliver::{Attempt, Deliver};
use crate::alerts::Alert;
use crate::client::LogClient;
use crate::error::Error;
use crate::home::Home;
use crate::statements::{sign, submit, Why};
use crate::trust::Trust;

/// The client identity the monitor's own statements carry.
pub const SOURCE: &str = "custody-monitor";

/// Signs and submits holds.
pub struct HoldSink {
    home: Home,
    policy: Policy,
    client: LogClient,
    signer: ActorSigner,
    reason: String,
    wait: Duration,
}

impl HoldSink {
    /// A sink signing with `signer`, talking to the log of `trust`.
    pub fn new(trust: &Trust, home: &Home, signer: ActorSigner, reason: String, wait: Duration) -> Self {
        HoldSink {
            home: home.clone(),
            policy: trust.policy().clone(),
            client: trust.client().clone(),
            signer,
            reason,
            wait,
        }
    }

    /// The hold an alert asks for, if it names a model.
    pub fn target(a: &Alert) -> Option<HoldTarget> {
        let name = ModelName::new(a.name.as_deref()?).ok()?;
        let version = a.version.as_deref().and_then(|v| Version::new(v).ok());
        Some(HoldTarget { name, version })
    }
}

/// `reason (alert id: summary)`, cut to the statement text limit.
fn reason(base: &str, a: &Alert) -> String {
    let mut r = format!("{base} ({}: {})", a.id, a.summary);
    if r.len() > MAX_TEXT_LEN {
        let mut end = MAX_TEXT_LEN;
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        r.truncate(end);
    }
    r
}

impl Deliver for HoldSink {
    fn deliver(&self, a: &Alert) -> Attempt {
        let Some(target) = HoldSink::target(a) else {
            return Attempt::Refused("the alert names no model to hold".into());
        };
        let why = Why {
            reason: reason(&self.reason, a),
            environment: None,
            pipeline: None,
            source: Some(SOURCE.to_owned()),
        };
        let envelope = match sign(&self.signer, &why, Event::Hold(target)) {
            Ok(e) => e,
            Err(e) => return Attempt::Refused(e.to_string()),
        };
        let trust = Trust::new(&self.home, &self.policy, &self.client);
        match submit(&trust, &envelope, self.wait) {
            Ok(r) => {
                tracing::info!(id = %a.id, index = r.index, "hold logged");
                Attempt::Delivered
            }
            Err(Error::Refused { status: 409 | 423, .. }) => Attempt::Delivered,
            Err(Error::Refused { status, detail, .. }) if (400..500).contains(&status) && status != 429 => {
                Attempt::Refused(format!("{status}: {detail}"))
            }
            Err(e) => Attempt::Retry(e.to_string(), None),
        }
    }
}
