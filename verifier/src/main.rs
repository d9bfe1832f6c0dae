//! The `custody` binary: parses the command line, runs the library, and
//! turns errors into one line on stderr plus the documented exit code.

mod choices;
mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use choices::{lifecycle_set, spelling};
use clap::Parser as _;
use custody_registry::actor_key::ActorKey;
use custody_registry::names::{ActorName, Digest, ModelName, Pattern, TagName};
use custody_registry::statement::events::{
    Approve, GrantRole, Promote, Protect, RevokeKey, RevokeRole, Rollback, Rotate, TagMove,
};
use custody_registry::statement::Event;
use custody_registry::timestamp::Timestamp;
use custody_standards::Policy;
use custody_verifier::audit::{audit, AuditOptions, AuditReport};
use custody_verifier::client::LogClient;
use custody_verifier::directory::publish::publish_dir;
use custody_verifier::directory::{default_jobs, pull_any, verify_any};
use custody_verifier::error::{Error, EXIT_FAILURE, EXIT_USAGE};
use custody_verifier::history::{history, subject_history, table, Subject};
use custody_verifier::home::{load_policy, normalize_url, read_capped, Home};
use custody_verifier::keyfile::{keygen, load_signer};
use custody_verifier::monitor::{monitor, Rules};
use custody_verifier::offline;
use custody_verifier::publish::{publish, PublishRequest};
use custody_verifier::pull::{verify_reference, Ref, ANY_STATUS};
use custody_verifier::report::{markdown, report};
use custody_verifier::statements::{sign, submit, Receipt, Why};
use custody_verifier::trust::{Trust, Trusted};

use cli::{Cli, Command, Verify};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Error>().map_or(EXIT_FAILURE, Error::exit_code);
            eprintln!("custody: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

/// Everything a networked command needs.
struct Ctx {
    home: Home,
    policy: Policy,
    client: LogClient,
}

impl Ctx {
    fn trust(&self) -> Trust<'_> {
        Trust::new(&self.home, &self.policy, &self.client)
    }
}

fn policy(cli: &Cli, home: &Home) -> Result<Policy, Error> {
    match &cli.policy {
        Some(p) => load_policy(p),
        None => home.load_policy(),
    }
}

fn ctx(cli: &Cli, home: Home) -> Result<Ctx, Error> {
    ctx_with(cli, home, None)
}

/// Like [`ctx`], with a URL given on the command line taking precedence.
fn ctx_with(cli: &Cli, home: Home, url: Option<&str>) -> Result<Ctx, Error> {
    let url = match url.or(cli.log_url.as_deref()) {
        Some(u) => normalize_url(u)?,
        None => home.load_config()?.log_url,
    };
    let policy = policy(cli, &home)?;
    let client = LogClient::new(&url, Duration::from_secs(60), ca_cert(cli, &home))?;
    Ok(Ctx { home, policy, client })
}

/// `--ca-cert` / `CUSTODY_CA_CERT`, else the file `custody init` saved.
fn ca_cert(cli: &Cli, home: &Home) -> Option<PathBuf> {
    cli.ca_cert.clone().or_else(|| home.load_config().ok().and_then(|c| c.ca_cert))
}

fn key_path(cli: &Cli, home: &Home) -> PathBuf {
    cli.key.clone().unwrap_or_else(|| home.key_file())
}

fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, Error> {
    read_capped(path, cap)
}

fn print_checkpoint(t: &Trusted) {
    let c = &t.checkpoint;
    println!("checkpoint: {} size {} root {}", c.origin, c.size, c.root.to_base64());
    if !t.cosigners.is_empty() {
        println!("cosigned by: {}", t.cosigners.join(", "));
    }
}

fn print_audit(r: &AuditReport) {
    let resumed = r.resumed_from.map(|s| format!(", resumed from size {s}")).unwrap_or_default();
    println!("log {} size {} root {}{resumed}", r.origin, r.size, r.root);
    println!("tiles and bundles: {} fetched, {} from cache", r.fetched, r.cached);
    match &r.full_replay {
        None => println!(
            "replay: from entry {}, after the checked state saved by the audit of size {}",
            r.replay_from, r.replay_from
        ),
        Some(why) => println!("replay: from entry 0 ({why})"),
    }
    match &r.violation {
        // Every entry replayed clean, by this audit and (before
        // `replay_from`) by the earlier ones whose state it resumed.
        None => println!(
            "audit OK: {} entries replayed ({} by this audit), no violation",
            r.entries_replayed,
            r.entries_replayed.saturating_sub(r.replay_from)
        ),
        Some(v) => println!("audit FAILED at entry {}: {}", v.index, v.problem),
    }
}

fn print_receipt(what: &str, r: &Receipt, bundle: Option<&Path>) -> anyhow::Result<()> {
    let dup = if r.duplicate { " (already logged)" } else { "" };
    println!("logged {what} at entry {}{dup}", r.index);
    print_checkpoint(&r.checkpoint);
    if let Some(path) = bundle {
        std::fs::write(path, r.bundle().to_bytes()).with_context(|| format!("writing {}", path.display()))?;
        println!("proof bundle: {}", path.display());
    }
    Ok(())
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

fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::resolve(cli.home.as_deref())?;
    let wait = Duration::from_secs(cli.wait);
    let why = Why {
        reason: cli.reason.clone(),
        environment: cli.environment.clone(),
        pipeline: cli.pipeline.clone(),
    };
    match &cli.command {
        Command::Init => {
            let (Some(p), Some(u)) = (&cli.policy, &cli.log_url) else {
                return Err(Error::Usage("init needs --policy FILE and --log URL".into()).into());
            };
            home.init(p, u, cli.ca_cert.as_deref())?;
            println!(
                "configured {} with policy {}",
                home.config_file().display(),
                home.policy_file().display()
            );
            println!("state directory: {}", home.state_dir.display());
        }
        Command::Keygen(k) => {
            let path = k.out.clone().unwrap_or_else(|| key_path(&cli, &home));
            let s = keygen(&k.actor, &path, k.force)?;
            eprintln!("wrote {} (mode 0600); give an admin this public key:", path.display());
            println!("{}", s.public());
        }
        Command::Whoami => {
            let s = load_signer(&key_path(&cli, &home))?;
            println!("actor: {}", s.actor().as_str());
            println!("key id: {}", s.key_id());
            println!("public key: {}", s.public());
        }
        Command::Checkpoint => {
            let c = ctx(&cli, home)?;
            print_checkpoint(&c.trust().refresh()?);
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
            let r = if a.file.is_dir() {
                let jobs = a.jobs.map_or_else(default_jobs, |j| j as usize);
                let d = publish_dir(&trust, &signer, &why, &req, &a.file, jobs, wait)?;
                eprintln!(
                    "manifest {} lists {} files ({} bytes); uploaded {} files ({} bytes), the rest were in the log",
                    d.manifest, d.files, d.total_bytes, d.uploaded_files, d.uploaded_bytes
                );
                d.receipt
            } else {
                publish(&trust, &signer, &why, &req, &a.file, wait)?
            };
            // The receipt is part of a publish: by default next to the file.
            let bundle = a.receipt.bundle.clone().unwrap_or_else(|| {
                let mut p = a.file.clone().into_os_string();
                p.push(".tlog-proof");
                PathBuf::from(p)
            });
            print_receipt(&format!("publish {}@{}", a.name, a.version), &r, Some(&bundle))?;
            if let Some(tag) = &a.tag {
                let r = move_tag(&trust, &signer, &why, &format!("{}@{}", a.name, a.version), tag, wait)?;
                print_receipt(&format!("tag {}:{tag}", a.name), &r, None)?;
            }
        }
        Command::Tag(a) => {
            let c = ctx(&cli, home)?;
            let signer = load_signer(&key_path(&cli, &c.home))?;
            let r = move_tag(&c.trust(), &signer, &why, &a.target, &a.tag, wait)?;
            print_receipt(&format!("tag {} -> {}", a.tag, a.target), &r, a.receipt.bundle.as_deref())?;
        }
        Command::Promote(a) => {
            let (name, version) = version_ref(&a.target)?;
            let event = Event::Promote(Promote { name, version, to: a.to.into() });
            let what = format!("promote {} to {}", a.target, spelling(&a.to));
            statement_cmd(&cli, home, &why, event, &what, &a.receipt)?;
        }
        Command::Approve(a) => {
            let (name, version) = version_ref(&a.target)?;
            let event = Event::Approve(Approve { name, version });
            statement_cmd(&cli, home, &why, event, &format!("approve {}", a.target), &a.receipt)?;
        }
        Command::Rollback(a) => {
            let (name, version) = version_ref(&a.target)?;
            let event = Event::Rollback(Rollback { name, version });
            statement_cmd(&cli, home, &why, event, &format!("rollback to {}", a.target), &a.receipt)?;
        }
        Command::Protect(a) => {
            let event = Event::Protect(Protect {
                name: parse("name", ModelName::new(&a.name))?,
                tag: parse("tag", TagName::new(&a.tag))?,
                statuses: lifecycle_set(&a.statuses),
            });
            let listed: Vec<String> = a.statuses.iter().map(spelling).collect();
            let what = format!("protect {}:{} ({})", a.name, a.tag, listed.join(","));
            statement_cmd(&cli, home, &why, event, &what, &a.receipt)?;
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
            statement_cmd(&cli, home, &why, event, &what, &a.receipt)?;
        }
        Command::Revoke(a) => {
            let event = Event::Revoke(RevokeRole {
                actor: parse("actor", ActorName::new(&a.actor))?,
                role: a.role.into(),
                pattern: parse("--pattern", Pattern::new(&a.pattern))?,
            });
            let what = format!("revoke {} {} on {}", a.actor, spelling(&a.role), a.pattern);
            statement_cmd(&cli, home, &why, event, &what, &a.receipt)?;
        }
        Command::RevokeKey(a) => {
            let key = parse("key", ActorKey::parse(&a.actor_key))?;
            let event = Event::RevokeKey(RevokeKey { actor: key.actor().clone(), key_id: key.id() });
            let what = format!("revoke key {} of {}", key.id(), key.actor().as_str());
            statement_cmd(&cli, home, &why, event, &what, &a.receipt)?;
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
            print_receipt("rotate", &r, a.bundle.as_deref())?;
            println!("new public key: {}", new.public());
        }
        Command::Pull(a) => {
            let c = ctx(&cli, home)?;
            let reference = Ref::parse(&a.reference)?;
            let allow = lifecycle_set(&a.allow_status);
            let allow = allow.as_slice();
            let trust = c.trust();
            let jobs = a.jobs.map_or_else(default_jobs, |j| j as usize);
            let (v, dir) = if a.verify_only {
                let signer = || load_signer(&key_path(&cli, &c.home));
                verify_any(&trust, signer, &why, &reference, allow, &a.output, jobs, wait)?
            } else {
                let signer = load_signer(&key_path(&cli, &c.home))?;
                pull_any(&trust, &signer, &why, &reference, allow, &a.output, jobs, wait)?
            };
            if let Some(d) = &dir {
                eprintln!(
                    "{} files, {} bytes, under the access at entry {}",
                    d.files, d.bytes, d.access_index
                );
            }
            let tag = v.tag_index.map(|i| format!(", tag move at entry {i}")).unwrap_or_default();
            println!(
                "verified {}@{} {} ({} bytes) published by {} at entry {}{tag}",
                v.name.as_str(),
                v.version.as_str(),
                v.digest,
                v.size,
                v.publisher.as_str(),
                v.publish_index
            );
            print_checkpoint(&v.checkpoint);
            if !a.verify_only {
                println!("wrote {}", a.output.display());
            }
        }
        Command::Audit(a) => {
            let c = ctx_with(&cli, home, a.url.as_deref())?;
            let opts = AuditOptions {
                window: Duration::from_secs(a.statement_window),
                jobs: a.jobs,
                exact: a.exact,
                refetch: a.refetch,
                threads: a.threads.unwrap_or_else(|| {
                    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
                }),
            };
            let report = audit(&c.trust(), &c.home, &opts)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_audit(&report);
            }
            if let Some(v) = &report.violation {
                return Err(Error::verify(format!("audit: entry {}: {}", v.index, v.problem)).into());
            }
        }
        Command::Monitor(a) => {
            let c = ctx_with(&cli, home, a.url.as_deref())?;
            let rules = Rules::parse(&read_file(&a.watch, 1 << 20)?)?;
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
            if a.json {
                println!("{}", serde_json::to_string_pretty(&h.rows)?);
            } else {
                print!("{}", table(&h.rows));
                print_checkpoint(&h.checkpoint);
            }
        }
        Command::Report(a) => {
            let c = ctx(&cli, home)?;
            let subject = match (&a.name, &a.actor, &a.digest) {
                (Some(n), None, None) => Subject::Name(parse("--name", ModelName::new(n))?),
                (None, Some(actor), None) => Subject::Actor(parse("--actor", ActorName::new(actor))?),
                (None, None, Some(d)) => Subject::Digest(parse("--digest", Digest::new(d))?),
                _ => return Err(Error::Usage("give exactly one of --name, --actor, --digest".into()).into()),
            };
            let from = parse("--from", Timestamp::parse(&a.from))?;
            let to = parse("--to", Timestamp::parse(&a.to))?;
            let h = subject_history(&c.trust(), &subject, a.max_accesses, wait)?;
            let r = report(&h, from, to);
            let json = serde_json::to_string_pretty(&r)?;
            let md = markdown(&r);
            if let Some(p) = &a.markdown {
                std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
            }
            if let Some(p) = &a.json_file {
                std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
            }
            if a.json {
                println!("{json}");
            } else {
                print!("{md}");
            }
        }
        Command::Verify(v) => verify(&cli, &home, v)?,
    }
    Ok(())
}

/// Signs `event` with the key file, submits it and prints the receipt.
fn statement_cmd(
    cli: &Cli,
    home: Home,
    why: &Why,
    event: Event,
    what: &str,
    receipt: &cli::Receipt,
) -> anyhow::Result<()> {
    let c = ctx(cli, home)?;
    let signer = load_signer(&key_path(cli, &c.home))?;
    let envelope = sign(&signer, why, event)?;
    let r = submit(&c.trust(), &envelope, Duration::from_secs(cli.wait))?;
    print_receipt(what, &r, receipt.bundle.as_deref())
}

/// Moves `tag` to the (proven) publish of `target`, naming the tag's
/// current move as `previous`.
fn move_tag(
    trust: &Trust,
    signer: &custody_registry::actor_key::ActorSigner,
    why: &Why,
    target: &str,
    tag: &str,
    wait: Duration,
) -> anyhow::Result<Receipt> {
    let (name, version) = version_ref(target)?;
    let tag = parse("tag", TagName::new(tag))?;
    // Any status: which versions a tag may name is the log's rule to
    // enforce (protected tags), not this client's.
    let v = verify_reference(trust, &Ref::Version(name.clone(), version), &ANY_STATUS, wait)?;
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
    let envelope = sign(signer, why, Event::Tag(TagMove { name, tag, digest: v.digest, previous }))?;
    Ok(submit(trust, &envelope, wait)?)
}

/// `--signer`: an actor key, or a file whose first line is one.
fn parse_signer(s: &str) -> anyhow::Result<ActorKey> {
    if let Ok(k) = ActorKey::parse(s.trim()) {
        return Ok(k);
    }
    let path = Path::new(s);
    if !path.is_file() {
        return Err(
            Error::Usage(format!("--signer {s:?} is neither an actor key nor a file holding one")).into()
        );
    }
    let text = read_file(path, 4096)?;
    let line = String::from_utf8_lossy(&text);
    let line = line.lines().next().unwrap_or("").trim();
    ActorKey::parse(line).map_err(|e| Error::Usage(format!("--signer {}: {e}", path.display())).into())
}

fn verify(cli: &Cli, home: &Home, v: &Verify) -> anyhow::Result<()> {
    let policy = policy(cli, home)?;
    const CAP: u64 = 1 << 20;
    match v {
        Verify::Checkpoint { file } => {
            let r = offline::verify_checkpoint(&policy, &read_file(file, CAP)?)?;
            println!(
                "checkpoint OK: {} size {} root {}",
                r.checkpoint.origin,
                r.checkpoint.size,
                r.checkpoint.root.to_base64()
            );
            println!("satisfied: {}", r.satisfied.join(", "));
        }
        Verify::Inclusion { checkpoint, entry, index, proof } => {
            let proof = offline::parse_proof(&read_file(proof, CAP)?)?;
            let r = offline::verify_inclusion_offline(
                &policy,
                &read_file(checkpoint, CAP)?,
                &read_file(entry, 65_535)?,
                *index,
                &proof,
            )?;
            println!("inclusion OK: entry {index} in {} size {}", r.checkpoint.origin, r.checkpoint.size);
        }
        Verify::Consistency { old, new, proof } => {
            let proof = offline::parse_proof(&read_file(proof, CAP)?)?;
            let (o, n) = offline::verify_consistency_offline(
                &policy,
                &read_file(old, CAP)?,
                &read_file(new, CAP)?,
                &proof,
            )?;
            println!(
                "consistency OK: {} size {} -> {}",
                o.checkpoint.origin, o.checkpoint.size, n.checkpoint.size
            );
        }
        Verify::Evidence { file } => {
            let cap = custody_registry::evidence::MAX_EVIDENCE_SIZE as u64;
            let (ev, split) = offline::verify_evidence(&policy, &read_file(file, cap)?)?;
            let (a, b) = (&split.smaller, &split.larger);
            println!("split view proven: {} signed two inconsistent checkpoints", ev.origin);
            println!("size {} root {}", a.size, a.root.to_base64());
            match split.implied_root {
                Some(r) => println!(
                    "size {} root {} (whose tree has root {} at size {})",
                    b.size,
                    b.root.to_base64(),
                    r.to_base64(),
                    a.size
                ),
                None => println!("size {} root {}", b.size, b.root.to_base64()),
            }
            println!("reported by {} at {}", ev.reporter, ev.detected);
        }
        Verify::Bundle { file, entry, artifact, signer } => {
            // Refused before anything is read: an artifact verdict without
            // an expected signer would vouch for whatever the log included.
            if artifact.is_some() && signer.is_none() {
                return Err(Error::verify(
                    "--artifact needs --signer (or CUSTODY_SIGNER): the actor key of the expected \
                     publisher; a bundle alone proves that some bytes were logged, not who published them",
                )
                .into());
            }
            let signer = signer.as_deref().map(parse_signer).transpose()?;
            let entry = entry.as_deref().map(|p| read_file(p, 65_535)).transpose()?;
            let r = offline::verify_bundle(&policy, &read_file(file, CAP)?, entry)?;
            println!(
                "bundle OK: entry {} in {} size {}",
                r.index, r.checkpoint.checkpoint.origin, r.checkpoint.checkpoint.size
            );
            if let Some(s) = &r.statement {
                let st = &s.statement;
                println!("statement: {} by {} at {}", st.event.action(), st.actor.as_str(), st.time);
            }
            if let Some(key) = &signer {
                offline::verify_signer(&r, key)?;
                println!("signature OK: by {} with key {}", key.actor().as_str(), key.id());
            }
            if let Some(path) = artifact {
                let Some(Event::Publish(p)) = r.statement.as_ref().map(|s| &s.statement.event) else {
                    return Err(Error::verify("the bundle's entry is not a publish").into());
                };
                let (digest, size) = custody_verifier::publish::hash_file(path)?;
                if digest != p.digest || size != p.size {
                    return Err(Error::verify(format!(
                        "{} is not {}@{} ({})",
                        path.display(),
                        p.name.as_str(),
                        p.version.as_str(),
                        p.digest
                    ))
                    .into());
                }
                println!("artifact OK: {} is {}@{}", path.display(), p.name.as_str(), p.version.as_str());
            }
            if signer.is_some() {
                println!("{}", offline::NOT_ESTABLISHED_OFFLINE);
            }
        }
    }
    Ok(())
}
