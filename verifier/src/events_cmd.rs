//! The commands that sign holds, releases, deploy and transfer records, and
//! the break-glass forms of `promote`, `rollback` and `tag`.

use std::time::Duration;

use custody_registry::names::{ModelName, Version};
use custody_registry::statement::events::{BreakGlass, Deploy, HoldTarget, Transfer};
use custody_registry::statement::{Event, Text};
use custody_verifier::error::Error;
use custody_verifier::home::Home;
use custody_verifier::pull::{verify_reference_with, Holds, Ref, ANY_STATUS};
use custody_verifier::statements::Why;

use crate::cli::{Cli, DeployArgs, HoldArgs, TransferArgs};
use crate::output::Printer;
use crate::{ctx, parse, statement_cmd, version_ref};

/// The reason every statement carries when `--reason` is not given.
pub const DEFAULT_REASON: &str = "custody cli";

/// `--reason`, which holds, releases and break-glass statements must give
/// themselves: the reason is what they are judged by later.
pub fn required_reason(cli: &Cli, what: &str) -> Result<(), Error> {
    match &cli.reason {
        Some(r) if !r.trim().is_empty() => Ok(()),
        _ => Err(Error::Usage(format!("{what} needs --reason TEXT (or CUSTODY_REASON): say why"))),
    }
}

/// `org/model` or `org/model@version`.
fn hold_target(s: &str) -> Result<HoldTarget, Error> {
    if s.contains('@') {
        let (name, version) = version_ref(s)?;
        return Ok(HoldTarget { name, version: Some(version) });
    }
    Ok(HoldTarget { name: parse("name", ModelName::new(s))?, version: None })
}

/// `hold` (`release` when `release`).
pub fn hold(
    cli: &Cli,
    home: Home,
    why: &Why,
    a: &HoldArgs,
    release: bool,
    p: &mut Printer,
) -> anyhow::Result<()> {
    let action = if release { "release" } else { "hold" };
    required_reason(cli, action)?;
    let target = hold_target(&a.target)?;
    let event = if release { Event::Release(target) } else { Event::Hold(target) };
    statement_cmd(cli, home, why, event, format!("{action} {}", a.target), &a.receipt, p)
}

/// The proven digest of `reference` (`org/model@version`), for a deploy or
/// transfer record. Holds are the log's to refuse.
fn proven_version(
    cli: &Cli,
    home: &Home,
    reference: &str,
) -> anyhow::Result<(ModelName, Version, custody_registry::names::Digest)> {
    let (name, version) = version_ref(reference)?;
    let c = ctx(cli, home.clone())?;
    let r = Ref::Version(name.clone(), version.clone());
    let v =
        verify_reference_with(&c.trust(), &r, &ANY_STATUS, Holds::LeaveToLog, Duration::from_secs(cli.wait))?;
    Ok((name, version, v.digest))
}

fn text(what: &str, s: &str) -> Result<Text, Error> {
    Text::new(s).map_err(|e| Error::Usage(format!("{what}: {e}")))
}

/// `deploy`.
pub fn deploy(cli: &Cli, home: Home, why: &Why, a: &DeployArgs, p: &mut Printer) -> anyhow::Result<()> {
    let target = text("--target", &a.target)?;
    let (name, version, digest) = proven_version(cli, &home, &a.reference)?;
    let event = Event::Deploy(Deploy { name, version, digest, target });
    statement_cmd(cli, home, why, event, format!("deploy {} to {}", a.reference, a.target), &a.receipt, p)
}

/// `transfer`.
pub fn transfer(cli: &Cli, home: Home, why: &Why, a: &TransferArgs, p: &mut Printer) -> anyhow::Result<()> {
    let destination = text("--destination", &a.destination)?;
    let (name, version, digest) = proven_version(cli, &home, &a.reference)?;
    let event = Event::Transfer(Transfer { name, version, digest, destination });
    let what = format!("transfer {} to {}", a.reference, a.destination);
    statement_cmd(cli, home, why, event, what, &a.receipt, p)
}

/// Wraps `event` in a `break_glass` when asked (with a reason), else
/// returns it as it is.
pub fn maybe_break_glass(cli: &Cli, break_glass: bool, event: Event) -> Result<Event, Error> {
    if !break_glass {
        return Ok(event);
    }
    required_reason(cli, "--break-glass")?;
    Ok(Event::BreakGlass(match event {
        Event::Promote(e) => BreakGlass::Promote(e),
        Event::Rollback(e) => BreakGlass::Rollback(e),
        Event::Tag(e) => BreakGlass::Tag(e),
        other => return Err(Error::Usage(format!("{} has no break-glass form", other.action()))),
    }))
}
