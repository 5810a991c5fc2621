//! A job's checkpoints in a state directory: `<dir>/<job>/ckpt-<epoch>/`, each holding one Arrow
//! IPC file per node and batch schema (`part-<n>.arrow`) and `manifest.json` — the plan's
//! checksum, the epoch, every source's position and watermark, every sink's position, and each
//! part's node, length and CRC-32; its last line is the CRC-32 of the rest (`crc32:<n>`). A
//! checkpoint is written into `ckpt-<epoch>.tmp/`, every file fsynced, the manifest last, the
//! directory fsynced, then renamed into place and the job's directory fsynced: a checkpoint
//! directory without `.tmp` is complete. The newest two are kept. Loading takes the newest
//! checkpoint whose manifest and parts have their checksums and decode; a damaged one is
//! skipped for the one before.
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use weir_connectors::Position;

use super::crc::crc32;
use crate::job::{JobSnapshot, SourceCut};

/// The manifest format's version.
const VERSION: u32 = 1;
/// Checkpoints kept.
const KEEP: usize = 2;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The state was written by another plan of the job.
    #[error("the state of job '{job}' in {dir} was written by another version of its plan; start with --reset to discard it")]
    ChangedPlan { job: String, dir: String },
    /// Encoding or decoding a part.
    #[error("checkpoint part: {0}")]
    Encode(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let context = context.into();
    move |source| CheckpointError::Io { context, source }
}

/// One part file.
#[derive(Debug, Serialize, Deserialize)]
struct Part {
    file: String,
    node: String,
    bytes: u64,
    crc: u32,
}

/// Where a source stood.
#[derive(Debug, Serialize, Deserialize)]
struct SourceEntry {
    position: Option<Position>,
    watermark: Option<i64>,
}

/// What a checkpoint holds besides its parts.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    job: String,
    plan: u32,
    epoch: u64,
    sources: BTreeMap<String, SourceEntry>,
    sinks: BTreeMap<String, Position>,
    parts: Vec<Part>,
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct Loaded {
    /// Its epoch.
    pub epoch: u64,
    /// The snapshot.
    pub snapshot: JobSnapshot,
    /// Newer checkpoints that were damaged, and why.
    pub skipped: Vec<String>,
}

/// One job's checkpoints.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    job: String,
    plan: u32,
}

fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let mut f = File::create(path).map_err(io(format!("creating {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}

fn encode(batches: &[&RecordBatch]) -> Result<Vec<u8>, CheckpointError> {
    let e = |e: datafusion::arrow::error::ArrowError| CheckpointError::Encode(e.to_string());
    let mut buf = Vec::new();
    let schema = batches[0].schema();
    let mut w = FileWriter::try_new(&mut buf, &schema).map_err(e)?;
    for b in batches {
        w.write(b).map_err(e)?;
    }
    w.finish().map_err(e)?;
    drop(w);
    Ok(buf)
}

fn decode(bytes: Vec<u8>) -> Result<Vec<RecordBatch>, String> {
    let r = FileReader::try_new(std::io::Cursor::new(bytes), None).map_err(|e| e.to_string())?;
    r.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

impl Store {
    /// The checkpoints of job `job` (whose plan, as JSON, is `plan`) under `dir`.
    pub fn open(dir: &Path, job: &str, plan: &str) -> Result<Store, CheckpointError> {
        let dir = dir.join(job);
        fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        Ok(Store {
            dir,
            job: job.to_string(),
            plan: crc32(plan.as_bytes()),
        })
    }

    /// Discards every checkpoint of the job.
    pub fn reset(&self) -> Result<(), CheckpointError> {
        for (_, p) in self.list(true)? {
            fs::remove_dir_all(&p).map_err(io(format!("removing {}", p.display())))?;
        }
        // What sinks staged belongs to the discarded checkpoints.
        let sinks = self.dir.join("sinks");
        if sinks.exists() {
            fs::remove_dir_all(&sinks).map_err(io(format!("removing {}", sinks.display())))?;
        }
        Ok(())
    }

    /// The job's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checkpoint directories, newest first (`with_tmp`: unfinished ones too).
    fn list(&self, with_tmp: bool) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
        let rd = fs::read_dir(&self.dir).map_err(io(format!("reading {}", self.dir.display())))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(rest) = name.strip_prefix("ckpt-") else {
                continue;
            };
            let (num, tmp) = match rest.strip_suffix(".tmp") {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if let (Ok(n), true) = (num.parse::<u64>(), with_tmp || !tmp) {
                out.push((n, e.path()));
            }
        }
        out.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        Ok(out)
    }

    /// Writes `snap` as checkpoint `epoch`, durably, then drops all but the newest two.
    pub fn write(&self, epoch: u64, snap: &JobSnapshot) -> Result<PathBuf, CheckpointError> {
        let done = self.dir.join(format!("ckpt-{epoch:020}"));
        let tmp = self.dir.join(format!("ckpt-{epoch:020}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
        let mut parts = Vec::new();
        for (node, batches) in &snap.state {
            // One file per schema: a node's snapshot may hold batches of several kinds.
            let mut groups: Vec<Vec<&RecordBatch>> = Vec::new();
            for b in batches.iter().filter(|b| b.num_rows() > 0) {
                match groups.iter_mut().find(|g| g[0].schema() == b.schema()) {
                    Some(g) => g.push(b),
                    None => groups.push(vec![b]),
                }
            }
            for g in groups {
                let bytes = encode(&g)?;
                let file = format!("part-{}.arrow", parts.len());
                write_synced(&tmp.join(&file), &bytes)?;
                parts.push(Part {
                    file,
                    node: node.clone(),
                    bytes: bytes.len() as u64,
                    crc: crc32(&bytes),
                });
            }
        }
        let manifest = Manifest {
            version: VERSION,
            job: self.job.clone(),
            plan: self.plan,
            epoch,
            sources: snap
                .sources
                .iter()
                .map(|(k, c)| {
                    let e = SourceEntry {
                        position: c.position.clone(),
                        watermark: c.watermark,
                    };
                    (k.clone(), e)
                })
                .collect(),
            sinks: snap.sinks.clone(),
            parts,
        };
        let mut text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| CheckpointError::Encode(e.to_string()))?;
        let sum = crc32(&text);
        text.extend_from_slice(format!("\ncrc32:{sum}\n").as_bytes());
        write_synced(&tmp.join("manifest.json"), &text)?;
        sync_dir(&tmp)?;
        let _ = fs::remove_dir_all(&done);
        fs::rename(&tmp, &done).map_err(io(format!("renaming {}", tmp.display())))?;
        sync_dir(&self.dir)?;
        for (_, old) in self.list(true)?.into_iter().skip(KEEP) {
            let _ = fs::remove_dir_all(old);
        }
        Ok(done)
    }

    /// The newest complete, undamaged checkpoint (`None`: there is none).
    pub fn load(&self) -> Result<Option<Loaded>, CheckpointError> {
        let mut skipped = Vec::new();
        for (epoch, dir) in self.list(false)? {
            match self.read(&dir) {
                Ok(snapshot) => {
                    return Ok(Some(Loaded {
                        epoch,
                        snapshot,
                        skipped,
                    }))
                }
                Err(Damage::Plan) => {
                    return Err(CheckpointError::ChangedPlan {
                        job: self.job.clone(),
                        dir: self.dir.display().to_string(),
                    })
                }
                Err(Damage::Part(why)) => {
                    tracing::warn!("skipping damaged checkpoint {}: {why}", dir.display());
                    skipped.push(format!("{}: {why}", dir.display()));
                }
            }
        }
        Ok(None)
    }

    fn read(&self, dir: &Path) -> Result<JobSnapshot, Damage> {
        let text = fs::read(dir.join("manifest.json"))
            .map_err(|e| Damage::Part(format!("manifest: {e}")))?;
        let text = String::from_utf8_lossy(&text);
        let (body, sum) = text
            .trim_end()
            .rsplit_once("\ncrc32:")
            .ok_or_else(|| Damage::Part("manifest without its checksum".into()))?;
        if sum.parse::<u32>().ok() != Some(crc32(body.as_bytes())) {
            return Err(Damage::Part("manifest: checksum differs".into()));
        }
        let m: Manifest =
            serde_json::from_str(body).map_err(|e| Damage::Part(format!("manifest: {e}")))?;
        if m.version != VERSION || m.job != self.job {
            return Err(Damage::Part("a manifest of another job or version".into()));
        }
        if m.plan != self.plan {
            return Err(Damage::Plan);
        }
        let mut snap = JobSnapshot::default();
        for p in &m.parts {
            let bytes = fs::read(dir.join(&p.file))
                .map_err(|e| Damage::Part(format!("{}: {e}", p.file)))?;
            if bytes.len() as u64 != p.bytes || crc32(&bytes) != p.crc {
                return Err(Damage::Part(format!("{}: length or CRC differs", p.file)));
            }
            let batches = decode(bytes).map_err(|e| Damage::Part(format!("{}: {e}", p.file)))?;
            snap.state
                .entry(p.node.clone())
                .or_default()
                .extend(batches);
        }
        snap.sources = m
            .sources
            .into_iter()
            .map(|(k, e)| {
                let cut = SourceCut {
                    position: e.position,
                    watermark: e.watermark,
                };
                (k, cut)
            })
            .collect();
        snap.sinks = m.sinks;
        Ok(snap)
    }
}

/// Why a checkpoint was not loaded.
enum Damage {
    /// It belongs to another plan.
    Plan,
    /// A file is missing, short or corrupt.
    Part(String),
}

#[cfg(test)]
mod tests {
    //! Round trip, the newest two kept, damage falls back to the previous checkpoint, another
    //! plan is refused.
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn snapshot(n: i64) -> JobSnapshot {
        let a = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let b = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let ba = RecordBatch::try_new(a, vec![Arc::new(Int64Array::from(vec![n, n + 1]))]).unwrap();
        let bb = RecordBatch::try_new(b, vec![Arc::new(StringArray::from(vec!["k"]))]).unwrap();
        let mut s = JobSnapshot::default();
        s.state
            .insert("j/p/0/features".into(), vec![ba.clone(), bb, ba]);
        let mut pos = Position::new();
        pos.insert("file".into(), format!("{n} 2"));
        s.sources.insert(
            "p/r".into(),
            SourceCut {
                position: Some(pos.clone()),
                watermark: Some(n),
            },
        );
        s.sinks.insert("out".into(), pos);
        s
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("weir-ckpt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn rows(s: &JobSnapshot) -> Vec<usize> {
        s.state.values().flatten().map(|b| b.num_rows()).collect()
    }

    #[test]
    fn round_trip_keeps_two_and_falls_back_past_damage() {
        let d = dir("store");
        let st = Store::open(&d, "j", "plan").unwrap();
        assert!(st.load().unwrap().is_none());
        for e in 1..=3 {
            st.write(e, &snapshot(e as i64 * 10)).unwrap();
        }
        assert_eq!(st.list(true).unwrap().len(), 2);
        let l = st.load().unwrap().unwrap();
        assert_eq!(l.epoch, 3);
        assert_eq!(rows(&l.snapshot), vec![2, 2, 1]);
        assert_eq!(l.snapshot.sources["p/r"].watermark, Some(30));
        assert_eq!(l.snapshot.sinks["out"]["file"], "30 2");
        // A flipped bit in the newest part: the one before is loaded.
        let part = d
            .join("j")
            .join(format!("ckpt-{:020}", 3))
            .join("part-0.arrow");
        let mut bytes = fs::read(&part).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        fs::write(&part, bytes).unwrap();
        let l = st.load().unwrap().unwrap();
        assert_eq!((l.epoch, l.skipped.len()), (2, 1));
        assert_eq!(l.snapshot.sources["p/r"].watermark, Some(20));
        // A changed digit in a manifest is caught by its checksum.
        let m2 = d
            .join("j")
            .join(format!("ckpt-{:020}", 2))
            .join("manifest.json");
        let text = fs::read_to_string(&m2).unwrap();
        fs::write(&m2, text.replacen("\"20 2\"", "\"21 2\"", 1)).unwrap();
        assert!(st.load().unwrap().is_none());
        fs::write(&m2, &text).unwrap();
        assert_eq!(st.load().unwrap().unwrap().epoch, 2);
        // A truncated manifest too: nothing loads.
        let m = d
            .join("j")
            .join(format!("ckpt-{:020}", 2))
            .join("manifest.json");
        let text = fs::read(&m).unwrap();
        fs::write(&m, &text[..text.len() / 2]).unwrap();
        assert!(st.load().unwrap().is_none());
        // An unfinished checkpoint is never read.
        fs::create_dir_all(d.join("j").join("ckpt-00000000000000000009.tmp")).unwrap();
        assert!(st.load().unwrap().is_none());
        st.reset().unwrap();
        assert!(st.list(true).unwrap().is_empty());
    }

    #[test]
    fn another_plan_is_refused() {
        let d = dir("plan");
        Store::open(&d, "j", "plan a")
            .unwrap()
            .write(1, &snapshot(1))
            .unwrap();
        let e = Store::open(&d, "j", "plan b").unwrap().load().unwrap_err();
        assert!(e.to_string().contains("--reset"), "{e}");
    }
}
