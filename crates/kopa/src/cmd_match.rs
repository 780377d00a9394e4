//! `kopa match`: match observations or logs against indicators.
//!
//! Indicators come from STIX bundles or JSON lines; observations from STIX observed-data, JSON-lines
//! logs (Elastic Common Schema, or any mapping), Zeek TSV logs or CSV. One JSON line is printed per
//! indicator that matched (`{"indicator", "observed_data", "count"}`), or a STIX sighting with
//! `--sightings`. A closing summary goes to stderr; a progress bar too when stderr is a terminal.
//!
//! With `--node URL --collection ID --token T` the indicators are also read from a TAXII 2.1
//! collection (see [`crate::taxii_client`]), and with `--sightings` the sightings are posted back to it
//! (unless `--no-post`).

use crate::taxii_client::{self, Collection, TaxiiClient};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use kopa_pattern::input::json::{read_json_lines, JsonScanner};
use kopa_pattern::input::{csv::read_csv, stix::read_stix, zeek::read_zeek, BadRecord, Mapping};
use kopa_pattern::matcher::{
    read_indicators, read_indicators_from, MatchResult, MatcherBuilder, Session,
};
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The read buffer of an observation file (lines longer than this are carried across fills).
const OBSERVATION_BUFFER: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// STIX 2.1 observed-data (bundles or JSON lines).
    Stix,
    /// JSON lines through a field mapping (Elastic Common Schema by default).
    Ecs,
    /// Zeek TSV logs.
    Zeek,
    /// CSV with a header row, mapped by column name (ECS names by default).
    Csv,
}

#[derive(Args)]
pub struct MatchArgs {
    /// Indicator files: STIX bundles or JSON lines of STIX objects.
    #[arg(long, num_args = 1.., required_unless_present = "node")]
    indicators: Vec<PathBuf>,
    /// Also read the indicators of a TAXII 2.1 collection: the node's base URL (discovery at
    /// /taxii2/), a discovery URL or an API root URL.
    #[arg(long, value_name = "URL", requires = "collection")]
    node: Option<String>,
    /// The collection on --node (its id, or its alias) to read indicators from and post sightings to.
    #[arg(long, value_name = "ID", requires = "node")]
    collection: Option<String>,
    /// The API token for --node, sent as a Bearer token (KOPA_TOKEN keeps it off the command line).
    #[arg(long, value_name = "TOKEN", env = "KOPA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Observation files (logs or STIX observed-data).
    #[arg(long, num_args = 1.., required = true)]
    observations: Vec<PathBuf>,
    /// Format of the observation files (detected per file when absent).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// A TOML field mapping (default: the shipped ECS mapping; Zeek's for Zeek logs).
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Print STIX 2.1 sighting objects instead of match lines (and post them to --collection).
    #[arg(long)]
    sightings: bool,
    /// With --sightings and --node: print the sightings only, and post nothing back (a token that may
    /// only read the collection will do).
    #[arg(long, requires = "sightings")]
    no_post: bool,
}

impl MatchArgs {
    /// Whether the sightings go back to the node's collection.
    fn posts_sightings(&self) -> bool {
        self.sightings && !self.no_post && self.node.is_some()
    }
}

fn detect(path: &Path) -> anyhow::Result<Format> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".csv") {
        return Ok(Format::Csv);
    }
    let mut head = vec![0u8; 64 * 1024];
    let n = File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .read(&mut head)?;
    head.truncate(n);
    if head.starts_with(b"#separator") || head.starts_with(b"#fields") {
        return Ok(Format::Zeek);
    }
    let text = String::from_utf8_lossy(&head);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let t = first.trim_start();
    if t.starts_with('[') {
        return Ok(Format::Stix);
    }
    if t.starts_with('{') {
        // A JSON document over several lines is STIX; JSON lines are STIX when they hold STIX objects.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(first) else {
            return Ok(Format::Stix);
        };
        let ty = v.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if ty == "bundle" || ty == "observed-data" || v.get("spec_version").is_some() {
            return Ok(Format::Stix);
        }
        return Ok(Format::Ecs);
    }
    if first.contains('\t') {
        return Ok(Format::Zeek);
    }
    if first.contains(',') {
        return Ok(Format::Csv);
    }
    Ok(Format::Stix)
}

/// Counts bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

fn millis_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn sighting(r: &MatchResult, now: &str) -> serde_json::Value {
    let refs: Vec<&String> = r
        .observations
        .iter()
        .filter(|o| o.starts_with("observed-data--"))
        .collect();
    let mut s = serde_json::json!({
        "type": "sighting",
        "spec_version": "2.1",
        "id": format!("sighting--{}", uuid::Uuid::new_v4()),
        "created": now,
        "modified": now,
        "sighting_of_ref": r.indicator,
        "count": r.count.min(999_999_999),
        "first_seen": millis_to_rfc3339(r.first_seen),
        "last_seen": millis_to_rfc3339(r.last_seen),
    });
    if !refs.is_empty() {
        s["observed_data_refs"] = serde_json::json!(refs);
    }
    s
}

/// `--node`: opens the collection (checked writable when sightings go back to it, before any work)
/// and adds its indicators to `builder`. Returns the client and collection for posting, and the pages read.
fn from_node(
    args: &MatchArgs,
    builder: &mut MatcherBuilder,
    errors: &mut Vec<String>,
    skipped: &mut u64,
) -> anyhow::Result<Option<(TaxiiClient, Collection, u64)>> {
    let Some(node) = &args.node else {
        return Ok(None);
    };
    let Some(token) = args.token.as_deref().filter(|t| !t.trim().is_empty()) else {
        bail!("--node needs an API token: --token TOKEN, or the KOPA_TOKEN environment variable");
    };
    let url = taxii_client::parse_node_url(node)?;
    if url.scheme() == "http" && !taxii_client::is_loopback(&url) {
        eprintln!("warning: the token goes unencrypted to {url}: use https:// beyond this machine");
    }
    let client = TaxiiClient::new(token)?;
    let coll = client.open(&url, args.collection.as_deref().unwrap_or_default())?;
    if args.posts_sightings() && !coll.can_write {
        bail!(
            "{}: this token may not write to the collection, so sightings could not be posted \
             back (add --no-post to print them only, or use the token of a user who may write there)",
            coll.url
        );
    }
    let pages = client.indicator_pages(&coll, |page, body| {
        let read = read_indicators(body, |i| builder.add(i));
        *skipped += read.skipped;
        errors.extend(read.errors.into_iter().map(|e| format!("{page}: {e}")));
    })?;
    Ok(Some((client, coll, pages)))
}

/// Posts the sightings back to the node's collection and reports the TAXII status on stderr.
fn post_sightings(
    client: &TaxiiClient,
    coll: &Collection,
    sightings: &[(String, String)],
) -> anyhow::Result<ExitCode> {
    let mut err = std::io::stderr().lock();
    let o = client.post_objects(coll, sightings);
    writeln!(
        err,
        "kopa match: {} sightings posted to {}objects/ in {} envelopes: {} accepted, {} refused{}",
        sightings.len(),
        coll.url,
        o.envelopes,
        o.accepted,
        o.failures.len(),
        if o.not_sent > 0 {
            format!(", {} not sent", o.not_sent)
        } else {
            String::new()
        }
    )?;
    for (id, why) in o.failures.iter().take(10) {
        writeln!(err, "  sighting refused: {id}: {why}")?;
    }
    if o.failures.len() > 10 {
        writeln!(err, "  … and {} more refused", o.failures.len() - 10)?;
    }
    if let Some(why) = &o.aborted {
        writeln!(err, "  posting stopped: {why}")?;
    }
    Ok(if o.failures.is_empty() && o.aborted.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn run(args: MatchArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    // Indicators.
    let mut builder = MatcherBuilder::new();
    let mut ind_errors = Vec::new();
    let mut skipped = 0;
    let node = from_node(&args, &mut builder, &mut ind_errors, &mut skipped)?;
    for path in &args.indicators {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let read = read_indicators_from(BufReader::with_capacity(1 << 20, f), |i| builder.add(i))
            .with_context(|| format!("cannot read {}", path.display()))?;
        skipped += read.skipped;
        ind_errors.extend(
            read.errors
                .into_iter()
                .map(|e| format!("{}: {e}", path.display())),
        );
    }
    let (matcher, errors) = builder.build();
    ind_errors.extend(errors.into_iter().map(|e| e.to_string()));
    let compile_time = started.elapsed();
    let st = matcher.stats().clone();
    let matcher = Arc::new(matcher);

    let custom = match &args.mapping {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Some(Mapping::from_toml(&text).with_context(|| format!("in {}", p.display()))?)
        }
        None => None,
    };
    let ecs = custom.clone().unwrap_or_else(Mapping::ecs);
    let zeek = custom.clone().unwrap_or_else(Mapping::zeek);

    // The time sightings are stamped with and patterns' validity is judged at.
    let now_ms = kopa_core::Clock::now(&kopa_core::SystemClock).micros() / 1000;
    let mut session = Session::new(Arc::clone(&matcher), now_ms);
    let mut records = 0u64;
    let mut bad: Vec<(String, BadRecord)> = Vec::new();
    let mut bad_count = 0u64;
    let scan_start = Instant::now();
    let scan_cpu_start = thread_cpu_seconds();
    for path in &args.observations {
        let name = path.display().to_string();
        let format = match args.format {
            Some(f) => f,
            None => detect(path)?,
        };
        let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let counter = Arc::new(AtomicU64::new(0));
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::new(size);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_message(name.clone());
            b
        });
        // A small buffer: each fill is copied through the processor's caches, and a large one would
        // push out the indexes' filters, which every record's lookups read.
        let reader = BufReader::with_capacity(
            OBSERVATION_BUFFER,
            Counting {
                inner: file,
                n: Arc::clone(&counter),
            },
        );
        let mut on_bad = |b: BadRecord| {
            bad_count += 1;
            if bad.len() < 10 {
                bad.push((name.clone(), b));
            }
        };
        let tick = |records: u64| {
            if let Some(b) = &bar {
                if records.is_multiple_of(65_536) {
                    b.set_position(counter.load(Ordering::Relaxed));
                }
            }
        };
        match format {
            Format::Ecs => {
                let plan = matcher.plan(&ecs);
                let scanner = JsonScanner::new(&ecs);
                read_json_lines(
                    reader,
                    &scanner,
                    |line, fields| {
                        records += 1;
                        tick(records);
                        session.match_record(&plan, &ecs, fields, &|| format!("{name}:{line}"));
                    },
                    &mut on_bad,
                )
                .with_context(|| format!("reading {name}"))?;
            }
            Format::Zeek | Format::Csv => {
                let mapping = if format == Format::Zeek { &zeek } else { &ecs };
                let plan = matcher.plan(mapping);
                let mut each = |line: u64, fields: &kopa_pattern::input::LineFields| {
                    records += 1;
                    tick(records);
                    session.match_record(&plan, mapping, fields, &|| format!("{name}:{line}"));
                };
                if format == Format::Zeek {
                    read_zeek(reader, mapping, &mut each, &mut on_bad)
                } else {
                    read_csv(reader, mapping, &mut each, &mut on_bad)
                }
                .with_context(|| format!("reading {name}"))?;
            }
            Format::Stix => {
                let mut bytes = Vec::new();
                let mut reader = reader;
                reader
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading {name}"))?;
                let (obs, bads) = read_stix(&bytes);
                for b in bads {
                    on_bad(b);
                }
                for o in &obs {
                    records += 1;
                    session.match_stix(o);
                }
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    }
    let scan_time = scan_start.elapsed();
    let scan_cpu = thread_cpu_seconds()
        .zip(scan_cpu_start)
        .map(|(end, start)| end - start);
    let (results, sstats) = session.finish();

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let now = millis_to_rfc3339(now_ms);
    let mut hits = 0u64;
    let mut to_post: Vec<(String, String)> = Vec::new();
    for r in &results {
        hits += r.observations.len() as u64;
        let line = if args.sightings {
            sighting(r, &now)
        } else {
            serde_json::json!({
                "indicator": r.indicator,
                "observed_data": r.observations,
                "count": r.count,
            })
        };
        let text = serde_json::to_string(&line)?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        if args.posts_sightings() {
            let id = line["id"].as_str().unwrap_or_default().to_string();
            to_post.push((id, text));
        }
    }
    out.flush()?;

    // Summary.
    let mut err = std::io::stderr().lock();
    let secs = scan_time.as_secs_f64().max(1e-9);
    writeln!(
        err,
        "kopa match: {} indicators ({} active: {} indexed exactly, {} verified, {} multi-observation; {} revoked, {} superseded, {} invalid, {} not STIX patterns) compiled in {:.2} s (indexes about {} MB)",
        st.indicators, st.active, st.exact, st.verified, st.multi, st.revoked, st.superseded, st.invalid, skipped,
        compile_time.as_secs_f64(),
        st.heap_bytes / 1_000_000
    )?;
    if let Some((_, coll, pages)) = &node {
        writeln!(
            err,
            "kopa match: indicators read from {}objects/ ({pages} pages)",
            coll.url
        )?;
    }
    for e in ind_errors.iter().take(5) {
        writeln!(err, "  indicator error: {e}")?;
    }
    if ind_errors.len() > 5 {
        writeln!(
            err,
            "  … and {} more indicator errors",
            ind_errors.len() - 5
        )?;
    }
    // Records per second of the scan, and per second of CPU time (what a loaded machine does not skew).
    let per_cpu = scan_cpu
        .filter(|c| *c > 0.0)
        .map(|c| format!(" ({:.0} records per CPU-second)", records as f64 / c))
        .unwrap_or_default();
    writeln!(
        err,
        "kopa match: {records} records read, {bad_count} bad, {} indicators matched ({hits} matches), {:.0} records/s{per_cpu}",
        results.len(),
        records as f64 / secs
    )?;
    for (file, b) in &bad {
        writeln!(err, "  bad record {file}:{}: {}", b.line, b.message)?;
    }
    if bad_count > bad.len() as u64 {
        writeln!(
            err,
            "  … and {} more bad records",
            bad_count - bad.len() as u64
        )?;
    }
    for id in &sstats.too_complex {
        writeln!(
            err,
            "  too complex to evaluate (step budget exceeded): {id}"
        )?;
    }
    drop(err);
    if let (Some((client, coll, _)), true) = (&node, args.posts_sightings()) {
        return post_sightings(client, coll, &to_post);
    }
    Ok(ExitCode::SUCCESS)
}

/// The CPU time that this thread (the one that scans) has used so far, in seconds, where the system
/// tells it: Linux's `/proc/thread-self/schedstat` gives it in nanoseconds.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}
