//! `kopa import FILE… --collection C --as USER`: load STIX 2.1 objects from files into a collection,
//! as one of the node's users would post them over TAXII — through the same write pipeline
//! (`kopa-ingest`: validate, stewardship, signed as originated here by the user's organisation, one
//! transaction per batch with its audit entry) and with the same per-object failures.
//!
//! A file is a STIX 2.1 bundle (`{"type": "bundle", "objects": [...]}`, streamed: the objects are
//! read one at a time, never the whole file), a JSON array of objects, or JSON lines (one object
//! per line). Memory stays bounded whatever the file's size: a reader thread parses batches ahead
//! into a queue of two while the previous batch is prepared and written. A batch committed stays
//! committed: a kill loses at most the batch being written, and a second run skips what is held
//! (an object version already stored is a duplicate, not an error).

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use kopa_core::audit::NewAuditEntry;
use kopa_core::permission::{decide, Action, Actor, Rights};
use kopa_core::Principal;
use kopa_federation::NodeIdentity;
use kopa_ingest::{prepare_batch, write_items, Batch, Peers, Provenancing};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::cmd_admin::{admin_config, run_admin, Output};
use crate::StoreArgs;

#[derive(Args)]
pub struct ImportArgs {
    /// STIX 2.1 bundles, JSON arrays of objects, or JSON lines of objects.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The collection (id or alias) to store the objects in.
    #[arg(long, value_name = "COLLECTION")]
    collection: String,
    /// The user of this node the objects are posted as: they are signed as originated here by
    /// the user's organisation, and the user needs the right to write into the collection.
    #[arg(long = "as", value_name = "USER")]
    user: String,
    /// Objects per transaction.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    batch: usize,
    #[command(flatten)]
    store: StoreArgs,
}

/// The largest transaction an import writes (two are held in memory besides the one written).
const MAX_BATCH: usize = 100_000;
/// Failures listed one by one in the output; the rest are counted.
const LISTED_FAILURES: usize = 1000;
/// Batches read ahead of the one being written.
const QUEUE: usize = 2;
/// The first line is read at most this far to tell JSON lines from a bundle.
const SNIFF: usize = 64 * 1024;

/// What the reader thread hands over: a batch of objects as their JSON text (with where each came
/// from, for lines that are not JSON), or the end of a file.
enum Parsed {
    Batch(Vec<Box<RawValue>>),
    /// A line of a JSON-lines file that is not one JSON value: (line number, the parser's message).
    BadLine(u64, String),
    Done(anyhow::Result<()>),
}

/// How a file holds its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Lines,
    Stream,
}

/// Look at the start of a file: a first line that is a whole JSON object (of moderate length) makes
/// it JSON lines; anything else starting with `{` or `[` is a bundle or an array, streamed.
fn shape(path: &Path) -> anyhow::Result<Shape> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut first = Vec::new();
    BufReader::new(f)
        .take(SNIFF as u64)
        .read_until(b'\n', &mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&first);
    let trimmed = text.trim();
    match trimmed.as_bytes().first() {
        None => Ok(Shape::Lines),
        Some(b'[') => Ok(Shape::Stream),
        Some(b'{') => {
            let whole_line = first.ends_with(b"\n") || first.len() < SNIFF;
            let one_value = whole_line && serde_json::from_str::<IgnoredAny>(trimmed).is_ok();
            let bundle = one_value
                && serde_json::from_str::<serde_json::Value>(trimmed)
                    .is_ok_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("bundle"));
            Ok(if one_value && !bundle {
                Shape::Lines
            } else {
                Shape::Stream
            })
        }
        Some(_) => anyhow::bail!(
            "{}: not a STIX bundle, a JSON array of objects, nor JSON lines (it starts with {:?})",
            path.display(),
            trimmed.chars().next().unwrap_or(' ')
        ),
    }
}

/// Sends full batches of objects into the queue as the parser finds them.
struct Sink<'a> {
    tx: &'a mpsc::Sender<Parsed>,
    batch: Vec<Box<RawValue>>,
    size: usize,
}

impl Sink<'_> {
    fn push(&mut self, raw: Box<RawValue>) -> Result<(), String> {
        self.batch.push(raw);
        if self.batch.len() >= self.size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
        self.tx
            .blocking_send(Parsed::Batch(batch))
            .map_err(|_| "the import stopped".to_string())
    }
}

/// The elements of a JSON array, each handed to the sink as its text.
struct Elements<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of STIX objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            self.0.push(raw).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

/// A whole file: a bundle (its `objects` streamed, its other members checked or skipped) or an
/// array of objects.
struct Document<'s, 'a>(&'s mut Sink<'a>);

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a STIX bundle or a JSON array of STIX objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Elements(self.0).visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut objects = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "objects" => {
                    map.next_value_seed(Elements(&mut *self.0))?;
                    objects = true;
                }
                "type" => {
                    let t = map.next_value::<String>()?;
                    if t != "bundle" {
                        return Err(serde::de::Error::custom(format!(
                            "a file holding one object must be JSON lines; this object is of type \
                             {t:?}, not a bundle"
                        )));
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !objects {
            return Err(serde::de::Error::custom(
                "the bundle has no \"objects\" list",
            ));
        }
        Ok(())
    }
}

/// Read `path` on this (blocking) thread and send its objects in batches of `size`.
fn read_file(path: &Path, shape: Shape, size: usize, tx: &mpsc::Sender<Parsed>, read: &AtomicU64) {
    let result = (|| -> anyhow::Result<()> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let reader = BufReader::with_capacity(256 * 1024, Counting { inner: f, n: read });
        let mut sink = Sink {
            tx,
            batch: Vec::with_capacity(size),
            size,
        };
        match shape {
            Shape::Stream => {
                let mut de = serde_json::Deserializer::from_reader(reader);
                de.deserialize_any(Document(&mut sink))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                de.end()
                    .map_err(|e| anyhow::anyhow!("{}: after the document: {e}", path.display()))?;
            }
            Shape::Lines => {
                for (n, line) in reader.lines().enumerate() {
                    let line =
                        line.with_context(|| format!("{} line {}", path.display(), n + 1))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Box<RawValue>>(&line) {
                        Ok(raw) => sink.push(raw).map_err(anyhow::Error::msg)?,
                        Err(e) => {
                            sink.flush().map_err(anyhow::Error::msg)?;
                            tx.blocking_send(Parsed::BadLine(n as u64 + 1, e.to_string()))
                                .map_err(|_| anyhow::anyhow!("the import stopped"))?;
                        }
                    }
                }
            }
        }
        sink.flush().map_err(anyhow::Error::msg)
    })();
    let _ = tx.blocking_send(Parsed::Done(result));
}

/// A reader that counts the bytes read (the progress bar's position).
struct Counting<'a, R> {
    inner: R,
    n: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

/// The objects of a batch as one TAXII envelope body: the pipeline reads it as it reads a POST,
/// numbers checked against the text as written.
fn envelope(batch: &[Box<RawValue>]) -> bytes::Bytes {
    let len = batch.iter().map(|r| r.get().len() + 1).sum::<usize>() + 16;
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(b"{\"objects\":[");
    for (i, raw) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(raw.get().as_bytes());
    }
    body.extend_from_slice(b"]}");
    bytes::Bytes::from(body)
}

/// Counts over every file.
#[derive(Default)]
struct Tally {
    total: u64,
    stored: u64,
    duplicates: u64,
    failed: u64,
    batches: u64,
    failures: Vec<serde_json::Value>,
}

impl Tally {
    fn fail(&mut self, entry: serde_json::Value) {
        self.failed += 1;
        if self.failures.len() < LISTED_FAILURES {
            self.failures.push(entry);
        }
    }
}

/// The write of the previous batch, still in flight.
type Pending = tokio::task::JoinHandle<Result<kopa_ingest::Written, kopa_store::StoreError>>;

/// Wait for the write in flight, if any, and count what it did.
async fn settle(
    pending: &mut Option<Pending>,
    tally: &mut Tally,
    name: &str,
) -> anyhow::Result<()> {
    let Some(write) = pending.take() else {
        return Ok(());
    };
    let written = write.await.context("a write task failed")??;
    tally.batches += 1;
    tally.stored += written.stored;
    tally.duplicates += written.duplicates;
    for (id, version, result) in written.details {
        if let Err((message, _)) = result {
            tally.fail(json!({"file": name, "id": id, "version": version, "message": message}));
        }
    }
    Ok(())
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = admin_config(&args.store)?;
    let json_out = args.store.json;
    let tty = std::io::stderr().is_terminal() && !json_out;
    let ImportArgs {
        files,
        collection,
        user,
        batch: size,
        store,
    } = args;
    run_admin(&store, move |s| async move {
        if !(1..=MAX_BATCH).contains(&size) {
            anyhow::bail!("--batch must be from 1 to {MAX_BATCH} objects");
        }
        // Every file is looked at before anything is written.
        let shapes = files
            .iter()
            .map(|p| shape(p).map(|s| (p.clone(), s)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The user posts: its organisation signs, and it needs the right to write here.
        let u = s
            .user_by_name(&user)
            .await
            .with_context(|| format!("--as: no user named {user:?} on this node"))?;
        let org = s.org_by_name(&u.org_name).await?;
        if org.node.is_some() {
            anyhow::bail!(
                "--as: {user} is a user of an organisation hosted on another node; import as a \
                 user of this node"
            );
        }
        let principal = Principal {
            user: u.id.clone(),
            user_name: u.name.clone(),
            org: u.org.clone(),
            org_name: u.org_name.clone(),
            role: u.role,
        };
        let view = s
            .collection(&principal.reader(), &collection)
            .await
            .with_context(|| format!("--collection: {user} sees no collection {collection:?}"))?;
        let rights = Rights {
            can_read: view.can_read,
            can_write: view.can_write,
        };
        decide(&Actor::Person(&principal), &Action::WriteObjects(rights))
            .map_err(|r| anyhow::anyhow!("{user} may not write into {collection}: {r}"))?;
        let cid = view.collection.id.clone();
        let key = kopa_federation::NodeKey::load(&config.data)?.context(
            "this node has no key yet: start it once with `kopa serve` (the objects are signed \
             as originated here)",
        )?;
        let identity = Arc::new(NodeIdentity::new(key));
        let peers = Peers::new(s.clone(), Some(&identity));
        let default_tlp = config.tlp_default;

        let mut tally = Tally::default();
        for (path, shape) in shapes {
            let name = path.display().to_string();
            let read = Arc::new(AtomicU64::new(0));
            let bar = tty.then(|| {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
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
            let (tx, mut rx) = mpsc::channel::<Parsed>(QUEUE);
            let reader = {
                let (path, read) = (path.clone(), read.clone());
                std::thread::Builder::new()
                    .name("kopa-import-read".into())
                    .spawn(move || read_file(&path, shape, size, &tx, &read))
                    .context("cannot start the reader thread")?
            };
            let mut outcome = Ok(());
            let mut pending: Option<Pending> = None;
            while let Some(msg) = rx.recv().await {
                match msg {
                    Parsed::Batch(batch) => {
                        let n = batch.len() as u64;
                        tally.total += n;
                        let prov = Provenancing::Local {
                            node: identity.clone(),
                            org: principal.org.0.clone(),
                            known: peers.known_keys().await?,
                        };
                        let body = envelope(&batch);
                        drop(batch);
                        let items = prepare_batch(&peers, Batch::Body(body), prov.clone())
                            .await
                            .map_err(|e| match e {
                                kopa_ingest::Failure::Refused(r) => anyhow::anyhow!("{name}: {r}"),
                                kopa_ingest::Failure::Store(e) => anyhow::Error::new(e),
                            })?;
                        let entry = NewAuditEntry {
                            actor: "cli".into(),
                            action: "objects.import".into(),
                            target: cid.clone(),
                            origin: "local".into(),
                            detail: json!({"as": principal.user_name, "file": name,
                                           "total": n, "success": 0, "failure": 0})
                            .to_string(),
                        };
                        // One write in flight while the next batch is read and prepared:
                        // transactions stay in order, one after the other.
                        settle(&mut pending, &mut tally, &name).await?;
                        let (store, cid, principal) = (s.clone(), cid.clone(), principal.clone());
                        pending = Some(tokio::spawn(async move {
                            write_items(
                                store.as_ref(),
                                &cid,
                                items,
                                Some(&principal),
                                None,
                                default_tlp,
                                &prov,
                                Some(entry),
                            )
                            .await
                        }));
                    }
                    Parsed::BadLine(line, message) => {
                        settle(&mut pending, &mut tally, &name).await?;
                        tally.total += 1;
                        tally.fail(json!({"file": name, "line": line,
                                          "message": format!("not JSON: {message}")}));
                    }
                    Parsed::Done(r) => {
                        settle(&mut pending, &mut tally, &name).await?;
                        outcome = r;
                        break;
                    }
                }
                if let Some(b) = &bar {
                    b.set_position(read.load(Ordering::Relaxed));
                }
            }
            drop(rx);
            let _ = reader.join();
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            // A file that breaks off keeps what was committed before; the import stops there.
            outcome.with_context(|| {
                format!(
                    "{} objects stored before the error (a second run skips them)",
                    tally.stored
                )
            })?;
        }
        let listed = tally.failures.len();
        let mut human = format!(
            "{} objects read: {} stored, {} already held, {} refused ({} transactions) into {}",
            tally.total, tally.stored, tally.duplicates, tally.failed, tally.batches, cid
        );
        for f in &tally.failures {
            let place = match (f["id"].as_str(), f["line"].as_u64()) {
                (Some(id), _) if !id.is_empty() => id.to_string(),
                (_, Some(line)) => format!("line {line}"),
                _ => "an object without id".to_string(),
            };
            let message = f["message"].as_str().unwrap_or("");
            // Messages about an object already start with its id.
            let message = message
                .strip_prefix(place.as_str())
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(message);
            human.push_str(&format!(
                "\n  {}: {place}: {message}",
                f["file"].as_str().unwrap_or("")
            ));
        }
        if tally.failed as usize > listed {
            human.push_str(&format!(
                "\n  … and {} more",
                tally.failed as usize - listed
            ));
        }
        Ok(Output {
            json: json!({"collection": cid, "total": tally.total, "stored": tally.stored,
                         "duplicates": tally.duplicates, "failed": tally.failed,
                         "transactions": tally.batches, "failures": tally.failures}),
            human,
            ok: tally.failed == 0,
        })
    })
}
