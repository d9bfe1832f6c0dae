//! Docs cannot drift. Every command line in a fenced code block of
//! README.md and docs/*.md (and every ``### `custody-log ...` `` heading)
//! that runs `custody`, `custody-log`, `custody-witness` or
//! `custody-loadgen` must:
//! (a) name (sub)commands that exist and only flags that the real binary's
//!     `<bin> <subcommand...> --help` lists for that subcommand;
//! (b) be exercised: the same binary and subcommand path is invoked by
//!     scripts/quickstart or by a test under `*/tests/` or the test kit
//!     `testkit/src` (an argument list
//!     such as `["--policy", p, "verify", "evidence", ...]`, resolved against
//!     the binary's real `--help` the same way; `--help` calls do not count).
//! Also, every row of a flag table (``| `--flag ARG` | `CUSTODY_ENV` |``)
//! must name a flag that some subcommand of the nearest documented binary
//! takes, read from that environment variable.
//!
//! `custody-loadgen` has no subcommands; its doc example only has to use
//! flags it accepts.
//!
//! All offenders are reported at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

const BINS: &[&str] = &["custody", "custody-log", "custody-witness", "custody-loadgen"];
/// Binaries whose doc examples need flag checks only (see above).
const FLAGS_ONLY: &[&str] = &["custody-loadgen"];

#[test]
fn every_documented_command_exists_takes_its_flags_and_is_exercised() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let mut help = Help::default();
    let (docs, rows) = doc_commands(&root);
    assert!(docs.len() >= 40, "only {} documented commands found: the extraction is broken", docs.len());
    let exercised = exercised(&root, &mut help);
    let mut offenders = Vec::new();
    for c in &docs {
        match help.resolve(&c.bin, &c.args) {
            Err(e) => offenders.push(format!("{}: `{} {}`: {e}", c.place, c.bin, c.args.join(" "))),
            Ok(path) if FLAGS_ONLY.contains(&c.bin.as_str()) => drop(path),
            Ok(path) if !exercised.contains(&(c.bin.clone(), path.clone())) => offenders.push(format!(
                "{}: `{} {}` is run by no test and not by scripts/quickstart",
                c.place,
                c.bin,
                path.join(" ")
            )),
            Ok(_) => {}
        }
    }
    for r in &rows {
        let found: Vec<Option<String>> = help
            .all_levels(&r.bin)
            .into_iter()
            .filter_map(|l| l.flags.get(&r.flag).map(|f| f.1.clone()))
            .collect();
        if found.is_empty() {
            offenders.push(format!("{}: no `{}` subcommand takes {}", r.place, r.bin, r.flag));
        } else if r.env.is_some() && !found.contains(&r.env) {
            offenders.push(format!(
                "{}: {} reads {:?}, not {}",
                r.place,
                r.flag,
                found,
                r.env.as_deref().unwrap()
            ));
        }
    }
    assert!(rows.len() >= 30, "only {} flag table rows found", rows.len());
    assert!(
        offenders.is_empty(),
        "{} documented commands drifted:\n{}",
        offenders.len(),
        offenders.join("\n")
    );
}

/// The extraction and the flag check themselves, on known lines.
#[test]
fn the_extraction_handles_prompts_continuations_pipes_and_env_prefixes() {
    let md = "text\n```sh\n$ CUSTODY_HOME=/h custody --policy P verify \\\n    evidence e.txt | tee x # c\n\
              cargo run --locked -p custody-log -- fsck --data-dir d [--flag x]\n\
              custody-log serve --listen a & custody-loadgen --log u\n```\n\
              ### `custody-witness add-key --data-dir DIR`\n";
    let got: Vec<(String, String)> =
        commands_in(md, "x.md").into_iter().map(|c| (c.bin, c.args.join(" "))).collect();
    let want = [
        ("custody", "--policy P verify evidence e.txt"),
        ("custody-log", "fsck --data-dir d --flag x"),
        ("custody-log", "serve --listen a"),
        ("custody-loadgen", "--log u"),
        ("custody-witness", "add-key --data-dir DIR"),
    ];
    assert_eq!(got, want.map(|(b, a)| (b.to_owned(), a.to_owned())));
    let mut help = Help::default();
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        help.resolve("custody", &args("--policy P verify evidence f")).unwrap(),
        ["verify", "evidence"]
    );
    assert!(help
        .resolve("custody", &args("verify evidence f --no-such-flag"))
        .unwrap_err()
        .contains("--no-such"));
    assert!(help.resolve("custody", &args("frobnicate")).unwrap_err().contains("frobnicate"));
    assert!(help.resolve("custody-log", &args("init --peers x")).unwrap_err().contains("--peers"));
    let rust = r#"u.run(&["--policy", p, "verify", "evidence", f]); x(&["pull", "--help"]); let c = '"';"#;
    let arrays = string_arrays(rust);
    assert_eq!(arrays[0], ["--policy", "", "verify", "evidence", ""].map(String::from));
    assert_eq!(arrays.len(), 2);
}

/// One documented command line.
struct DocCommand {
    place: String,
    line: usize,
    bin: String,
    args: Vec<String>,
}

/// The documented commands, and the rows of flag tables
/// (`| \`--flag ARG\` | \`CUSTODY_ENV\` | ...`) with the binary of the
/// nearest command before them in the same file (else the first one).
fn doc_commands(root: &Path) -> (Vec<DocCommand>, Vec<FlagRow>) {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> =
        std::fs::read_dir(root.join("docs")).unwrap().map(|e| e.unwrap().path()).collect();
    docs.sort();
    files.extend(docs.into_iter().filter(|p| p.extension().is_some_and(|e| e == "md")));
    let (mut out, mut rows) = (Vec::new(), Vec::new());
    for f in files {
        let name = f.strip_prefix(root).unwrap().display().to_string();
        let md = std::fs::read_to_string(&f).unwrap();
        let commands = commands_in(&md, &name);
        for (i, line) in md.lines().enumerate() {
            let Some(row) = line.strip_prefix("| `--") else { continue };
            let cells: Vec<&str> = row.split('|').collect();
            let flag = format!("--{}", cells[0].split(['`', ' ']).next().unwrap());
            let env = cells.get(1).and_then(|c| c.split('`').nth(1)).filter(|e| e.starts_with("CUSTODY_"));
            let near = commands.iter().rev().find(|c| c.line <= i + 1).or(commands.first());
            let bin = near
                .unwrap_or_else(|| panic!("{name}:{}: a flag table without a command", i + 1))
                .bin
                .clone();
            rows.push(FlagRow { place: format!("{name}:{}", i + 1), bin, flag, env: env.map(str::to_owned) });
        }
        out.extend(commands);
    }
    (out, rows)
}

/// One row of a documented flag table.
struct FlagRow {
    place: String,
    bin: String,
    flag: String,
    env: Option<String>,
}

/// Commands in fenced blocks (prompts, `\` continuations, comments,
/// pipes, `&`, `;`, env-var prefixes, `cargo run -p PKG --`) and in
/// headings whose code span starts with a binary.
fn commands_in(md: &str, file: &str) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let (mut fenced, mut pending, mut start) = (false, String::new(), 0);
    for (i, line) in md.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let logical = if fenced {
            if pending.is_empty() {
                start = i + 1;
            }
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            std::mem::take(&mut pending) + line
        } else if line.starts_with('#') && line.contains(" `custody") {
            start = i + 1;
            let span = line.split('`').nth(1).unwrap_or("");
            span.to_owned()
        } else {
            continue;
        };
        let logical = logical.trim_start().strip_prefix("$ ").unwrap_or(logical.trim_start()).to_owned();
        for segment in segments(&shell_words(&logical, true)) {
            if let Some((bin, args)) = doc_invocation(&segment) {
                out.push(DocCommand { place: format!("{file}:{start}"), line: start, bin, args });
            }
        }
    }
    out
}

/// Shell-like words: quotes group, `#` starts a comment; with `optional`,
/// unquoted `[` and `]` (the docs' optional parts) separate words.
fn shell_words(line: &str, optional: bool) -> Vec<String> {
    let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('"') | None, '\\') => cur.extend(chars.next()),
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, '#') if cur.is_empty() && !any => break,
            (None, c) if c.is_whitespace() || (optional && (c == '[' || c == ']')) => {
                if !cur.is_empty() || any {
                    words.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        words.push(cur);
    }
    words
}

/// Splits words into commands at `|`, `||`, `&&`, `;` and `&`.
fn segments(words: &[String]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for w in words {
        if ["|", "||", "&&", ";", "&"].contains(&w.as_str()) {
            out.push(Vec::new());
        } else if let Some(w) = w.strip_suffix(';').or_else(|| w.strip_suffix('&')) {
            out.last_mut().unwrap().push(w.to_owned());
            out.push(Vec::new());
        } else {
            out.last_mut().unwrap().push(w.clone());
        }
    }
    out
}

/// `words` without leading `NAME=value` assignments and `sudo`.
fn without_env(words: &[String]) -> Vec<String> {
    let is_env = |w: &String| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c == '_' || c.is_ascii_uppercase() || c.is_ascii_digit())
        })
    };
    words.iter().skip_while(|w| is_env(w) || *w == "sudo").cloned().collect()
}

/// The binary and its arguments, if the command runs one of [`BINS`].
fn doc_invocation(words: &[String]) -> Option<(String, Vec<String>)> {
    let words = without_env(words);
    let first = words.first()?;
    let base = first.rsplit('/').next().unwrap();
    if BINS.contains(&base) {
        return Some((base.to_owned(), words[1..].to_vec()));
    }
    if first == "cargo" && words.get(1).is_some_and(|w| w == "run") {
        let sep = words.iter().position(|w| w == "--").unwrap_or(words.len());
        let opts = &words[..sep];
        if opts.iter().any(|w| w == "--example") {
            return None;
        }
        let after = |flag: &str| opts.iter().position(|w| w == flag).and_then(|i| opts.get(i + 1)).cloned();
        let bin = after("--bin").or_else(|| {
            let pkg = after("-p").or_else(|| after("--package"))?;
            Some(match pkg.as_str() {
                "custody-verifier" => "custody".to_owned(),
                "custody-bench" => "custody-loadgen".to_owned(),
                p => p.to_owned(),
            })
        })?;
        return BINS
            .contains(&bin.as_str())
            .then(|| (bin, words.get(sep + 1..).unwrap_or_default().to_vec()));
    }
    None
}

/// `--help` of every (binary, subcommand path), parsed and cached.
#[derive(Default)]
struct Help {
    cache: HashMap<(String, Vec<String>), Result<Level, String>>,
}

#[derive(Clone)]
struct Level {
    subcommands: BTreeSet<String>,
    /// Flag (`--long` or `-s`) to whether it takes a value and its
    /// environment variable.
    flags: BTreeMap<String, (bool, Option<String>)>,
}

impl Help {
    fn level(&mut self, bin: &str, path: &[String]) -> Result<Level, String> {
        let key = (bin.to_owned(), path.to_vec());
        self.cache.entry(key).or_insert_with(|| parse_help(bin, path)).clone()
    }

    /// Every level of `bin`: the top and its subcommands, two deep.
    fn all_levels(&mut self, bin: &str) -> Vec<Level> {
        let mut out = Vec::new();
        let mut todo = vec![Vec::new()];
        while let Some(path) = todo.pop() {
            let Ok(level) = self.level(bin, &path) else { continue };
            if path.len() < 2 {
                for s in level.subcommands.iter().filter(|s| *s != "help") {
                    todo.push([path.clone(), vec![s.clone()]].concat());
                }
            }
            out.push(level);
        }
        out
    }

    /// The subcommand path `args` selects, checking every flag against the
    /// help of the level it is given at.
    fn resolve(&mut self, bin: &str, args: &[String]) -> Result<Vec<String>, String> {
        let mut path: Vec<String> = Vec::new();
        let mut level = self.level(bin, &path)?;
        let mut positional = false;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let shown = || format!("`{bin} {}`", path.join(" ")).replace(" `", "`");
            if a == "--" {
                break;
            } else if a.starts_with('-') && a.len() > 1 && !a[1..].starts_with(|c: char| c.is_ascii_digit()) {
                let name = a.split('=').next().unwrap();
                match level.flags.get(name) {
                    None => return Err(format!("{} has no flag {name}", shown())),
                    Some((takes, _)) => i += usize::from(*takes && !a.contains('=')),
                }
            } else if !level.subcommands.is_empty() && !positional {
                if !level.subcommands.contains(a) {
                    return Err(format!("{} has no subcommand {a:?}", shown()));
                }
                path.push(a.clone());
                level = self.level(bin, &path)?;
            } else {
                positional = true;
            }
            i += 1;
        }
        if !level.subcommands.is_empty() {
            return Err(format!("`{bin} {}` needs a subcommand", path.join(" ")));
        }
        Ok(path)
    }
}

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --bins` first", path.display());
    path
}

/// Parses clap's `--help`: the `Commands:` section and the option lines
/// (`  -o, --out <OUT>`, `      --json`).
fn parse_help(name: &str, path: &[String]) -> Result<Level, String> {
    let out = Command::new(bin(name)).args(path).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "`{name} {} --help` fails: {}",
            path.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut level = Level { subcommands: BTreeSet::new(), flags: BTreeMap::new() };
    let mut in_commands = false;
    let mut current: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.ends_with(':') && !line.starts_with(' ') {
            in_commands = line == "Commands:";
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if in_commands && indent == 2 {
            level.subcommands.extend(trimmed.split_whitespace().next().map(str::to_owned));
        } else if (1..=6).contains(&indent) && trimmed.starts_with('-') {
            let spec = trimmed.split("  ").next().unwrap();
            let takes = spec.contains('<');
            current = spec.split([',', ' ']).filter(|w| w.starts_with('-')).map(str::to_owned).collect();
            for flag in &current {
                level.flags.insert(flag.clone(), (takes, None));
            }
        }
        // The flag's description, on its line or the next ones.
        if let Some(env) = line.split("[env: ").nth(1).and_then(|e| e.split('=').next()) {
            for f in &current {
                level.flags.get_mut(f).unwrap().1 = Some(env.to_owned());
            }
        }
    }
    Ok(level)
}

/// (binary, subcommand path) of every invocation in scripts/quickstart and
/// in the tests.
fn exercised(root: &Path, help: &mut Help) -> BTreeSet<(String, Vec<String>)> {
    let mut out = BTreeSet::new();
    let script = std::fs::read_to_string(root.join("scripts/quickstart")).unwrap();
    for line in script.replace("\\\n", " ").lines() {
        let words: Vec<String> =
            shell_words(&line.replace("$(", " ").replace(')', " "), false).into_iter().collect();
        if words.first().is_some_and(|w| w == "echo") {
            continue;
        }
        for seg in segments(&words) {
            let seg: Vec<String> =
                without_env(&seg).into_iter().filter(|w| !w.contains('>') && !w.starts_with('<')).collect();
            let found = if seg.first().is_some_and(|w| w == "as") {
                Some(("custody".to_owned(), seg.get(2..).unwrap_or_default().to_vec()))
            } else {
                seg.iter()
                    .position(|w| BINS.contains(&w.rsplit('/').next().unwrap()))
                    .map(|i| (seg[i].rsplit('/').next().unwrap().to_owned(), seg[i + 1..].to_vec()))
            };
            if let Some((bin, args)) = found {
                if let Ok(path) = help.resolve(&bin, &args) {
                    out.insert((bin, path));
                }
            }
        }
    }
    for file in test_sources(root) {
        let src = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let mut bins: BTreeSet<&str> = BINS
            .iter()
            .copied()
            .filter(|b| src.contains(&format!("\"{b}\")")) || src.contains(&format!("CARGO_BIN_EXE_{b}\")")))
            .collect();
        let by_crate =
            [("log-server/", "custody-log"), ("witness/", "custody-witness"), ("verifier/", "custody")];
        bins.extend(by_crate.iter().filter(|(dir, _)| rel.starts_with(dir)).map(|(_, b)| *b));
        if rel.starts_with("tests/") {
            bins.insert("custody"); // `User::run` in the scenarios' harness
        }
        for args in string_arrays(&src) {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                continue;
            }
            for bin in &bins {
                if let Ok(path) = help.resolve(bin, &args) {
                    out.insert((bin.to_string(), path));
                }
            }
        }
    }
    out
}

/// Every `.rs` file under a crate's `tests/` directory, and the shared test
/// kit (`testkit/src`), where the harness starts the binaries.
fn test_sources(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for krate in std::fs::read_dir(root).unwrap().flatten() {
        walk(&krate.path().join("tests"), &mut out);
    }
    walk(&root.join("testkit/src"), &mut out);
    // Not this file: its own examples are no invocations.
    out.retain(|p| !p.ends_with("tests/tests/docs_commands.rs"));
    out.sort();
    out
}

/// Rust array literals whose first element is a string literal, as
/// argument lists: string literals verbatim, any other element as `""`.
fn string_arrays(src: &str) -> Vec<Vec<String>> {
    #[derive(PartialEq)]
    enum Tok {
        Str(String),
        Punct(char),
        Other,
    }
    let (b, mut toks, mut i) = (src.as_bytes(), Vec::new(), 0);
    while i < b.len() {
        let c = src[i..].chars().next().unwrap();
        if src[i..].starts_with("//") {
            i += src[i..].find('\n').unwrap_or(src.len() - i);
        } else if c == '"' || (c == 'r' && matches!(b.get(i + 1), Some(b'"' | b'#'))) {
            let hashes =
                if c == 'r' { src[i + 1..].len() - src[i + 1..].trim_start_matches('#').len() } else { 0 };
            let open = i + usize::from(c == 'r') + hashes + 1;
            let close = format!("\"{}", "#".repeat(hashes));
            let mut j = open;
            while j < b.len()
                && !(b[j..].starts_with(close.as_bytes())
                    && (c == 'r' || b[j - 1] != b'\\' || b[j - 2] == b'\\'))
            {
                j += 1;
            }
            toks.push(Tok::Str(src[open..j.min(b.len())].to_owned()));
            i = j + close.len();
        } else if c == '\'' && (b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\')) {
            i += 1 + src[i + 1..].find('\'').map_or(1, |n| n + 1 + usize::from(b[i + 1] == b'\\' && n == 1));
            toks.push(Tok::Other);
        } else if "[](){},;".contains(c) {
            toks.push(Tok::Punct(c));
            i += 1;
        } else {
            if !c.is_whitespace() {
                toks.push(Tok::Other);
            }
            i += c.len_utf8();
        }
    }
    let mut out = Vec::new();
    for start in 0..toks.len() {
        if toks[start] != Tok::Punct('[') || !matches!(toks.get(start + 1), Some(Tok::Str(_))) {
            continue;
        }
        let (mut depth, mut args, mut elem) = (0, Vec::new(), Vec::new());
        for t in &toks[start + 1..] {
            match t {
                Tok::Punct('[' | '(' | '{') => depth += 1,
                Tok::Punct(']' | ')' | '}') if depth == 0 => break,
                Tok::Punct(']' | ')' | '}') => depth -= 1,
                Tok::Punct(',') if depth == 0 => {
                    args.push(std::mem::take(&mut elem));
                    continue;
                }
                _ => {}
            }
            elem.push(t);
        }
        if !elem.is_empty() {
            args.push(elem);
        }
        let args = args.iter().map(|e| match e.as_slice() {
            [Tok::Str(s)] => s.clone(),
            _ => String::new(),
        });
        out.push(args.collect());
    }
    out
}
