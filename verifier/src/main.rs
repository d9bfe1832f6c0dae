//! The `custody` binary: parses the command line, runs the library, reports
//! each command's result as text or JSON ([`output`]), and turns errors
//! into one line on stderr plus the documented exit code.

mod allocator;
mod audit_args;
mod choices;
mod cli;
mod events_cmd;
mod output;
mod report_cmd;
mod verify_cmd;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use choices::{lifecycle_set, spelling};
use clap::Parser as _;
use custody_registry::actor_key::ActorKey;
use custody_registry::names::{ActorName, ModelName, Pattern, TagName};
use custody_registry::statement::events::{
    Approve, GrantRole, Promote, Protect, RevokeKey, RevokeRole, Rollback, Rotate, TagMove,
};
use custody_registry::statement::Event;
use custody_verifier::alerts::{Config as AlertConfig, RunOptions};
use custody_verifier::audit::directories::check_directories;
use custody_verifier::audit::{audit, audit_dir};
use custody_verifier::directory::publish::{publish_dir, read_oms_key, OmsInput};
use custody_verifier::directory::{default_jobs, pull_any, verify_any};
use custody_verifier::error::{Error, EXIT_USAGE};
use custody_verifier::history::history;
use custody_verifier::home::{read_capped, Home};
use custody_verifier::keyfile::{keygen, load_signer};
use custody_verifier::monitor::{monitor, Rules};
use custody_verifier::publish::{publish, PublishRequest};
use custody_verifier::pull::{verify_reference_with, Holds, Ref, ANY_STATUS};
use custody_verifier::session::{Session, Settings};
use custody_verifier::statements::{sign, submit, Receipt, Why};
use custody_verifier::trust::Trust;

use cli::{Cli, Command};
use output::{
    write_bundle, CheckpointOutput, HistoryOutput, InitOutput, KeygenOutput, Printer, PublishOutput,
    PublishedDirectory, PullOutput, PulledDirectory, ReceiptOutput, RotateOutput, SignedCheckpoint,
    StatementOutput, VerifiedArtifact, WhoamiOutput,
};

fn main() -> ExitCode {
    allocator::tune();
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            if code != 0 {
                output::usage_error(&args, &e);
            }
            return ExitCode::from(code as u8);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let mut printer = Printer::new(cli.format());
    match run(cli, &mut printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(printer.error(&e) as u8),
    }
}

/// Everything a networked command needs.
type Ctx = Session;

/// The command line's overrides of the saved configuration.
fn settings(cli: &Cli, url: Option<&str>) -> Settings {
    Settings {
        home: cli.home.clone(),
        log_url: url.or(cli.log_url.as_deref()).map(str::to_owned),
        tiles_url: cli.tiles_url.clone(),
        ca_cert: cli.ca_cert.clone(),
        policy: cli.policy.clone(),
        key: cli.key.clone(),
    }
}

fn policy(cli: &Cli, home: &Home) -> Result<custody_standards::Policy, Error> {
    custody_verifier::session::policy(&settings(cli, None), home)
}

fn ctx(cli: &Cli, home: Home) -> Result<Ctx, Error> {
    ctx_with(cli, home, None)
}

/// Like [`ctx`], with a URL given on the command line taking precedence.
fn ctx_with(cli: &Cli, home: Home, url: Option<&str>) -> Result<Ctx, Error> {
    Session::open(home, &settings(cli, url))
}

fn key_path(cli: &Cli, home: &Home) -> PathBuf {
    cli.key.clone().unwrap_or_else(|| home.key_file())
}

fn parse<T>(what: &str, r: Result<T, impl std::fmt::Display>) -> Result<T, Error> {
    r.map_err(|e| Error::Usage(format!("{what}: {e}")))
}

fn version_ref(
    s: &str,
) -> Result<(custody_registry::names::ModelName, custody_registry::names::Version), Error> {
    match Ref::parse(s)? {
        Ref::Version(n, v) => Ok((n, v)),
        _ => Err(Error::Usage(format!("{s:?}: expected org/model@version"))),
    }
}

/// Reads and checks a `monitor --rules` file (exit 64 when it is bad).
fn alert_rules(path: &Path) -> Result<AlertConfig, Error> {
    let bytes = read_capped(path, custody_verifier::alerts::config::MAX_RULES_FILE)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| Error::Usage(format!("{}: not UTF-8", path.display())))?;
    AlertConfig::parse(text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

fn run(cli: Cli, p: &mut Printer) -> anyhow::Result<()> {
    let home = Home::resolve(cli.home.as_deref())?;
    let wait = Duration::from_secs(cli.wait);
    let why = Why {
        reason: cli.reason.clone().unwrap_or_else(|| events_cmd::DEFAULT_REASON.to_owned()),
        environment: cli.environment.clone(),
        pipeline: cli.pipeline.clone(),
        source: cli.source.clone(),
    };
    match &cli.command {
        Command::Init => {
            let (Some(pol), Some(u)) = (&cli.policy, &cli.log_url) else {
                return Err(Error::Usage("init needs --policy FILE and --log URL".into()).into());
            };
            home.init(pol, u, cli.ca_cert.as_deref())?;
            let config = home.load_config()?;
            p.result(&InitOutput {
                config_file: home.config_file().display().to_string(),
                policy_file: home.policy_file().display().to_string(),
                state_dir: home.state_dir.display().to_string(),
                log_url: config.log_url,
                ca_cert: config.ca_cert.map(|c| c.display().to_string()),
            })?;
        }
        Command::Keygen(k) => {
            let path = k.out.clone().unwrap_or_else(|| key_path(&cli, &home));
            let s = keygen(&k.actor, &path, k.force)?;
            eprintln!("wrote {} (mode 0600); give an admin this public key:", path.display());
            p.result(&KeygenOutput { key: WhoamiOutput::of(&s), key_file: path.display().to_string() })?;
        }
        Command::Whoami => p.result(&WhoamiOutput::of(&load_signer(&key_path(&cli, &home))?))?,
        Command::Checkpoint => {
            let c = ctx(&cli, home)?;
            p.result(&SignedCheckpoint::of(&c.trust().refresh()?))?;
        }
        Command::Publish(a) => {
            let c = ctx(&cli, home)?;
            let signer = load_signer(&key_path(&cli, &c.home))?;
            let req = PublishRequest {
                name: a.name.clone(),
                version: a.version.clone(),
                kind: spelling(&a.kind),
                media_type: a.media_type.clone(),
                metadata: a.metadata.clone(),
                lineage: a.lineage.clone(),
            };
            let trust = c.trust();
            let oms = match (&a.oms_signature, &a.oms_key) {
                (Some(bundle), Some(key)) => Some(OmsInput { bundle: bundle.clone(), key: key.clone() }),
                (None, None) => None,
                _ => return Err(Error::Usage("--oms-signature and --oms-key go together".into()).into()),
            };
            if oms.is_some() && !a.file.is_dir() {
                return Err(
                    Error::Usage("an OpenSSF model signature is published with a directory".into()).into()
                );
            }
            let (r, dir) = if a.file.is_dir() {
                let jobs = a.jobs.map_or_else(default_jobs, |j| j as usize);
                let d = publish_dir(&trust, &signer, &why, &req, &a.file, oms.as_ref(), jobs, wait)?;
                eprintln!(
                    "manifest {} lists {} files ({} bytes); uploaded {} files ({} bytes), the rest were in the log",
                    d.manifest, d.files, d.total_bytes, d.uploaded_files, d.uploaded_bytes
                );
                let dir = PublishedDirectory::of(&d);
                (d.receipt, Some(dir))
            } else {
                (publish(&trust, &signer, &why, &req, &a.file, wait)?, None)
            };
            // The receipt is part of a publish: by default next to the file.
            let bundle = a.receipt.bundle.clone().unwrap_or_else(|| {
                let mut p = a.file.clone().into_os_string();
                p.push(".tlog-proof");
                PathBuf::from(p)
            });
            let mut out = PublishOutput::of(format!("publish {}@{}", a.name, a.version), &r)?;
            out.directory = dir;
            if let Err(e) = write_bundle(&r, &bundle) {
                return Err(p.failed_after(&out, e));
            }
            out.receipt.bundle = Some(bundle.display().to_string());
            if let Some(tag) = &a.tag {
                let target = format!("{}@{}", a.name, a.version);
                let moved = move_tag(&trust, &signer, &why, &target, tag, None, wait)
                    .and_then(|r| StatementOutput::of(format!("tag {}:{tag}", a.name), &r));
                match moved {
                    Ok(mut t) => {
                        t.version = Some(a.version.clone());
                        out.tag = Some(t);
                    }
                    Err(e) => return Err(p.failed_after(&out, e)),
                }
            }
            p.result(&out)?;
        }
        Command::Tag(a) => {
            let c = ctx(&cli, home)?;
            let signer = load_signer(&key_path(&cli, &c.home))?;
            let glass = a.break_glass.then_some(&cli);
            let r = move_tag(&c.trust(), &signer, &why, &a.target, &a.tag, glass, wait)?;
            let what = if a.break_glass { "break-glass tag" } else { "tag" };
            let mut out = StatementOutput::of(format!("{what} {} -> {}", a.tag, a.target), &r)?;
            out.version = Some(version_ref(&a.target)?.1.as_str().to_owned());
            logged(p, out, &r, a.receipt.bundle.as_deref())?;
        }
        Command::Promote(a) => {
            let (name, version) = version_ref(&a.target)?;
            let event = Event::Promote(Promote { name, version, to: a.to.into() });
            let event = events_cmd::maybe_break_glass(&cli, a.break_glass, event)?;
            let glass = if a.break_glass { "break-glass " } else { "" };
            let what = format!("{glass}promote {} to {}", a.target, spelling(&a.to));
            statement_cmd(&cli, home, &why, event, what, &a.receipt, p)?;
        }
        Command::Approve(a) => {
            let (name, version) = version_ref(&a.target)?;
            let event = Event::Approve(Approve { name, version });
            statement_cmd(&cli, home, &why, event, format!("approve {}", a.target), &a.receipt, p)?;
        }
        Command::Rollback(a) => {
            let (name, version) = version_ref(&a.target)?;
            let event = Event::Rollback(Rollback { name, version });
            let event = events_cmd::maybe_break_glass(&cli, a.break_glass, event)?;
            let glass = if a.break_glass { "break-glass " } else { "" };
            let what = format!("{glass}rollback to {}", a.target);
            statement_cmd(&cli, home, &why, event, what, &a.receipt, p)?;
        }
        Command::Hold(a) => events_cmd::hold(&cli, home, &why, a, false, p)?,
        Command::Release(a) => events_cmd::hold(&cli, home, &why, a, true, p)?,
        Command::Deploy(a) => events_cmd::deploy(&cli, home, &why, a, p)?,
        Command::Transfer(a) => events_cmd::transfer(&cli, home, &why, a, p)?,
        Command::Protect(a) => {
            let event = Event::Protect(Protect {
                name: parse("name", ModelName::new(&a.name))?,
                tag: parse("tag", TagName::new(&a.tag))?,
                statuses: lifecycle_set(&a.statuses),
            });
            let listed: Vec<String> = a.statuses.iter().map(spelling).collect();
            let what = format!("protect {}:{} ({})", a.name, a.tag, listed.join(","));
            statement_cmd(&cli, home, &why, event, what, &a.receipt, p)?;
        }
        Command::Grant(a) => {
            let key = parse("key", ActorKey::parse(&a.actor_key))?;
            let event = Event::Grant(GrantRole {
                actor: key.actor().clone(),
                key: key.clone(),
                role: a.role.into(),
                pattern: parse("--pattern", Pattern::new(&a.pattern))?,
            });
            let what = format!("grant {} {} on {}", key.actor().as_str(), spelling(&a.role), a.pattern);
            statement_cmd(&cli, home, &why, event, what, &a.receipt, p)?;
        }
        Command::Revoke(a) => {
            let event = Event::Revoke(RevokeRole {
                actor: parse("actor", ActorName::new(&a.actor))?,
                role: a.role.into(),
                pattern: parse("--pattern", Pattern::new(&a.pattern))?,
            });
            let what = format!("revoke {} {} on {}", a.actor, spelling(&a.role), a.pattern);
            statement_cmd(&cli, home, &why, event, what, &a.receipt, p)?;
        }
        Command::RevokeKey(a) => {
            let key = parse("key", ActorKey::parse(&a.actor_key))?;
            let event = Event::RevokeKey(RevokeKey { actor: key.actor().clone(), key_id: key.id() });
            let what = format!("revoke key {} of {}", key.id(), key.actor().as_str());
            statement_cmd(&cli, home, &why, event, what, &a.receipt, p)?;
        }
        Command::RotateKey(a) => {
            let c = ctx(&cli, home)?;
            let path = key_path(&cli, &c.home);
            let old = load_signer(&path)?;
            let staged = path.with_extension("new");
            let new = keygen(old.actor().as_str(), &staged, true)?;
            let envelope = sign(&old, &why, Event::Rotate(Rotate { new_key: new.public().clone() }))?;
            let r = submit(&c.trust(), &envelope, wait)?;
            let retired = path.with_extension("old");
            std::fs::rename(&path, &retired)
                .with_context(|| format!("keeping the old key as {}", retired.display()))?;
            std::fs::rename(&staged, &path)
                .with_context(|| format!("installing the new key at {}", path.display()))?;
            let mut out = RotateOutput {
                action: "rotate",
                new_key: new.public().to_string(),
                key_id: new.key_id().to_string(),
                key_file: path.display().to_string(),
                retired_key_file: retired.display().to_string(),
                receipt: ReceiptOutput::of(&r),
            };
            if let Some(b) = &a.bundle {
                if let Err(e) = write_bundle(&r, b) {
                    return Err(p.failed_after(&out, e));
                }
                out.receipt.bundle = Some(b.display().to_string());
            }
            p.result(&out)?;
        }
        Command::Pull(a) => {
            let c = ctx(&cli, home)?;
            let reference = Ref::parse(&a.reference)?;
            let allow = lifecycle_set(&a.allow_status);
            let allow = allow.as_slice();
            let trust = c.trust();
            let jobs = a.jobs.map_or_else(default_jobs, |j| j as usize);
            let oms_key = a.oms_key.as_deref().map(read_oms_key).transpose()?;
            let oms_key = oms_key.as_ref();
            let (v, dir) = if a.verify_only {
                let signer = || load_signer(&key_path(&cli, &c.home));
                verify_any(&trust, signer, &why, &reference, allow, &a.out, oms_key, jobs, wait)?
            } else {
                let signer = load_signer(&key_path(&cli, &c.home))?;
                pull_any(&trust, &signer, &why, &reference, allow, &a.out, oms_key, jobs, wait)?
            };
            if let Some(d) = &dir {
                eprintln!(
                    "{} files, {} bytes, under the access at entry {}",
                    d.files, d.bytes, d.access_index
                );
            }
            p.result(&PullOutput {
                reference: a.reference.clone(),
                artifact: VerifiedArtifact::of(&v),
                path: a.out.display().to_string(),
                written: !a.verify_only,
                directory: dir.as_ref().map(PulledDirectory::of),
            })?;
        }
        Command::Audit(a) => {
            let c = ctx_with(&cli, home, a.url.as_deref())?;
            let opts = a.tuning.options();
            let mut report = audit(&c.trust(), &c.home, &opts)?;
            if report.violation.is_none() && a.directories {
                let signer = load_signer(&key_path(&cli, &c.home))?;
                let dir = audit_dir(&c.home, &report.origin);
                let d = check_directories(&c.trust(), &signer, &why, &dir, &report.directories)?;
                eprintln!(
                    "directories: {} manifests checked, {} checked by an earlier audit",
                    d.checked, d.checked_before
                );
                report.violation = d.violation.clone();
                report.directory_audit = Some(d);
            }
            if let Some(v) = &report.violation {
                let e = Error::verify(format!("audit: entry {}: {}", v.index, v.problem));
                return Err(p.failed_after(&report, e.into()));
            }
            p.result(&report)?;
        }
        Command::Monitor(a) => {
            // One JSON line per alert in either format: the stream is the
            // result (docs/verifier.md).
            let c = ctx_with(&cli, home, a.url.as_deref())?;
            if let Some(path) = &a.rules {
                let cfg = alert_rules(path)?;
                let opts = RunOptions {
                    interval: Duration::from_secs(a.interval),
                    once: a.once,
                    from_start: a.from_start,
                    deliver_timeout: Duration::from_secs(a.deliver_timeout),
                };
                custody_verifier::alerts::run(&c.trust(), &c.home, &cfg, &opts)?;
                return Ok(());
            }
            let watch = a.watch.as_deref().ok_or_else(|| Error::Usage("give --watch or --rules".into()))?;
            let rules = Rules::parse(&read_capped(watch, 1 << 20)?)?;
            let mut out = std::io::stdout().lock();
            monitor(
                &c.trust(),
                &c.home,
                &rules,
                Duration::from_secs(a.interval),
                a.once,
                a.from_start,
                &mut out,
            )?;
        }
        Command::History(a) => {
            let c = ctx(&cli, home)?;
            let name = parse("name", ModelName::new(&a.name))?;
            let h = history(&c.trust(), &name, a.max_accesses, wait)?;
            p.result(&HistoryOutput {
                name: name.as_str().to_owned(),
                checkpoint: CheckpointOutput::of(&h.checkpoint),
                rows: h.rows,
            })?;
        }
        Command::Report(a) => {
            let c = ctx(&cli, home)?;
            report_cmd::report(&c.trust(), &c.home, a, cli.format(), wait, p)?;
        }
        Command::Verify(v) => verify_cmd::verify(&cli, &home, v, p)?,
    }
    Ok(())
}

/// Reports a proven statement, first saving its receipt to `bundle` if
/// asked.
fn logged(
    p: &mut Printer,
    mut out: StatementOutput,
    r: &Receipt,
    bundle: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(path) = bundle {
        if let Err(e) = write_bundle(r, path) {
            return Err(p.failed_after(&out, e));
        }
        out.receipt.bundle = Some(path.display().to_string());
    }
    p.result(&out)
}

/// Signs `event` with the key file, submits it and reports the receipt.
fn statement_cmd(
    cli: &Cli,
    home: Home,
    why: &Why,
    event: Event,
    what: String,
    receipt: &cli::Receipt,
    p: &mut Printer,
) -> anyhow::Result<()> {
    let c = ctx(cli, home)?;
    let signer = load_signer(&key_path(cli, &c.home))?;
    let envelope = sign(&signer, why, event)?;
    let r = submit(&c.trust(), &envelope, Duration::from_secs(cli.wait))?;
    logged(p, StatementOutput::of(what, &r)?, &r, receipt.bundle.as_deref())
}

/// Moves `tag` to the (proven) publish of `target`, naming the tag's
/// current move as `previous`; as a `break_glass` when `break_glass` holds
/// the command line (whose `--reason` it requires).
fn move_tag(
    trust: &Trust,
    signer: &custody_registry::actor_key::ActorSigner,
    why: &Why,
    target: &str,
    tag: &str,
    break_glass: Option<&Cli>,
    wait: Duration,
) -> anyhow::Result<Receipt> {
    let (name, version) = version_ref(target)?;
    let tag = parse("tag", TagName::new(tag))?;
    // Any status, and holds too: which versions a tag may name is the
    // log's rule to enforce (protected tags, holds), not this client's.
    let r = Ref::Version(name.clone(), version);
    let v = verify_reference_with(trust, &r, &ANY_STATUS, Holds::LeaveToLog, wait)?;
    // `previous` comes from the server: if it is wrong the log refuses the
    // move (409), so trusting it cannot misplace the tag.
    let previous = match trust.client().get_json::<serde_json::Value>(&format!(
        "registry/resolve?ref={}:{}",
        name.as_str(),
        tag.as_str()
    )) {
        Ok(r) => r["tag_index"].as_u64(),
        Err(Error::Refused { status: 404, .. }) => None,
        // A disqualified tag does not resolve, but moving it is the cure:
        // its current move is in the name's tag list.
        Err(Error::Refused { status: 409, code, .. }) if code == "tag_disqualified" => {
            let m: serde_json::Value =
                trust.client().get_json(&format!("registry/models/{}", name.as_str()))?;
            m["tags"]
                .as_array()
                .and_then(|tags| tags.iter().find(|t| t["tag"].as_str() == Some(tag.as_str())))
                .and_then(|t| t["index"].as_u64())
        }
        Err(e) => return Err(e.into()),
    };
    let event = Event::Tag(TagMove { name, tag, digest: v.digest, previous });
    let event = match break_glass {
        Some(cli) => events_cmd::maybe_break_glass(cli, true, event)?,
        None => event,
    };
    let envelope = sign(signer, why, event)?;
    Ok(submit(trust, &envelope, wait)?)
}
