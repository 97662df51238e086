//! Index snapshots in the data directory: what lets a replica start in seconds instead of
//! rebuilding every index from the store (an HNSW graph of 200k vectors takes a minute to build
//! and a second to read).
//!
//! A snapshot is one file per index (`<hex of the name>-<revision>.index`: the definition, the
//! payloads and the engine's binary form from [`pharos_vector::persist`], closed by a CRC-32)
//! and `manifest.json`, naming the files, the store they came from and the revision every one
//! of them is at. Files are written to a temporary name, synced and renamed; the manifest is
//! replaced last, so a crash leaves the previous snapshot whole. An index that has not changed
//! since the last snapshot keeps its file.
//!
//! At start the catalog reads the snapshot when its store identity matches and the change log
//! still reaches back to its revision, then replays the changes after it; otherwise (no
//! snapshot, another store, a damaged file, an older layout) it loads from the store, which is
//! always the source of truth. Files are read whole, not memory-mapped: mapping needs `unsafe`,
//! which this codebase forbids, and an index is rewritten in memory by the first write anyway.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pharos_vector::VectorIndex;
use pharos_vector::persist::{Decoder, Encoder};
use serde::{Deserialize, Serialize};

use crate::definition::IndexDefinition;
use crate::live_index::{IndexCopy, Payload};

/// The first bytes of an index file.
const MAGIC: &[u8; 8] = b"PHRSSNAP";
/// The layout of index files and manifest; another layout is ignored (and rewritten).
const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged or of another layout: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "the snapshot directory {path} is in use by another Pharos process; give each search \
         replica its own data_dir (or search.snapshot_dir)"
    )]
    InUse { path: PathBuf },
}

type Result<T, E = SnapshotError> = std::result::Result<T, E>;

/// What the manifest records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// The store the snapshot was taken from.
    pub store_id: String,
    /// Every index file holds its index as of this revision.
    pub revision: i64,
    pub indexes: BTreeMap<String, ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestEntry {
    pub file: String,
    /// The last revision that changed the index when its file was written.
    pub changed: i64,
    pub bytes: u64,
}

/// One index as a snapshot holds it.
#[derive(Debug)]
pub struct SnapshotIndex {
    pub name: String,
    pub definition: IndexDefinition,
    pub copy: IndexCopy,
    /// The last revision that changed it.
    pub changed: i64,
}

/// One index to write: its published copy and the last revision that changed it.
pub struct IndexToWrite {
    pub name: String,
    pub definition: IndexDefinition,
    pub copy: Arc<IndexCopy>,
    pub changed: i64,
}

/// The file in a snapshot directory that its process holds locked.
const LOCK: &str = "lock";

/// The snapshot directory of one replica, held for this process: two replicas writing one
/// directory would replace each other's files under each other's manifests.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    path: PathBuf,
    /// `<path>/lock`, locked exclusively (`flock`) while any clone of this lives; the kernel
    /// releases it when the process ends, however it ends.
    _lock: Arc<std::fs::File>,
}

impl SnapshotDir {
    /// Creates the directory if needed and locks it for this process; a directory another
    /// process holds is refused.
    pub fn open(path: PathBuf) -> Result<Self> {
        let io = |path: &Path, source| SnapshotError::Io {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(&path).map_err(|source| io(&path, source))?;
        let lock_path = path.join(LOCK);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| io(&lock_path, source))?;
        match lock.try_lock() {
            Ok(()) => Ok(Self {
                path,
                _lock: Arc::new(lock),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(SnapshotError::InUse { path }),
            Err(std::fs::TryLockError::Error(source)) => Err(io(&lock_path, source)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the directory now, whatever clones still live (a stopped service must not
    /// keep it from the next one). Nothing may be written to it afterwards.
    pub fn unlock(&self) {
        if let Err(error) = self._lock.unlock() {
            tracing::warn!(path = %self.path.display(), %error, "cannot unlock the snapshot directory");
        }
    }

    /// The manifest, if there is one of this layout.
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        let path = self.path.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SnapshotError::Io { path, source }),
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|error| SnapshotError::Damaged {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        Ok((manifest.format == FORMAT).then_some(manifest))
    }

    /// Reads every index `manifest` names, checking each file's checksum and layout.
    pub fn read(&self, manifest: &Manifest) -> Result<Vec<SnapshotIndex>> {
        manifest
            .indexes
            .iter()
            .map(|(name, entry)| {
                let path = self.path.join(&entry.file);
                let bytes = std::fs::read(&path).map_err(|source| SnapshotError::Io {
                    path: path.clone(),
                    source,
                })?;
                decode_index(name, &bytes, entry.changed).map_err(|reason| SnapshotError::Damaged {
                    path: path.clone(),
                    reason,
                })
            })
            .collect()
    }

    /// Writes a snapshot of `indexes` at `revision`, reusing the files of `previous` for
    /// indexes unchanged since, then removes files no manifest names. Each index is encoded
    /// and its copy released before its file is written, so that a write to the index waits
    /// for the encoding at most, never for the disk.
    pub fn write(
        &self,
        store_id: &str,
        revision: i64,
        indexes: Vec<IndexToWrite>,
        previous: Option<&Manifest>,
    ) -> Result<Manifest> {
        std::fs::create_dir_all(&self.path).map_err(|source| self.io(&self.path, source))?;
        let mut manifest = Manifest {
            format: FORMAT,
            store_id: store_id.to_owned(),
            revision,
            indexes: BTreeMap::new(),
        };
        for index in indexes {
            let reusable = previous
                .filter(|previous| previous.store_id == store_id)
                .and_then(|previous| previous.indexes.get(&index.name))
                .filter(|entry| {
                    entry.changed == index.changed && self.path.join(&entry.file).is_file()
                });
            if let Some(entry) = reusable {
                manifest.indexes.insert(index.name, entry.clone());
                continue;
            }
            let file = format!("{}-{revision}.index", hex(&index.name));
            let bytes = encode_index(&index.definition, &index.copy);
            drop(index.copy);
            self.write_file(&file, &bytes)?;
            manifest.indexes.insert(
                index.name,
                ManifestEntry {
                    file,
                    changed: index.changed,
                    bytes: bytes.len() as u64,
                },
            );
        }
        let text =
            serde_json::to_vec_pretty(&manifest).map_err(|error| SnapshotError::Damaged {
                path: self.path.join(MANIFEST),
                reason: error.to_string(),
            })?;
        self.write_file(MANIFEST, &text)?;
        self.remove_unnamed(&manifest);
        Ok(manifest)
    }

    /// Writes `bytes` to `name` atomically: a synced temporary file renamed over it, then the
    /// directory synced.
    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path.join(name);
        let temporary = self.path.join(format!("{name}.{}.tmp", std::process::id()));
        let mut file =
            std::fs::File::create(&temporary).map_err(|source| self.io(&temporary, source))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| self.io(&temporary, source))?;
        std::fs::rename(&temporary, &path).map_err(|source| self.io(&path, source))?;
        if let Ok(directory) = std::fs::File::open(&self.path) {
            // Makes the rename durable; not every platform can sync a directory.
            let _ = directory.sync_all();
        }
        Ok(())
    }

    /// Removes index and temporary files the manifest does not name (older snapshots, dropped
    /// indexes, writes cut short).
    fn remove_unnamed(&self, manifest: &Manifest) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        let named: Vec<&str> = manifest
            .indexes
            .values()
            .map(|entry| entry.file.as_str())
            .collect();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let ours = name.ends_with(".index") || name.ends_with(".tmp");
            if ours
                && !named.contains(&name)
                && let Err(error) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(file = %entry.path().display(), %error, "cannot remove an old snapshot file");
            }
        }
    }

    fn io(&self, path: &Path, source: std::io::Error) -> SnapshotError {
        SnapshotError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// An index file: magic, layout, definition, payloads, engine, CRC-32 of all before it.
fn encode_index(definition: &IndexDefinition, copy: &IndexCopy) -> Vec<u8> {
    let engine = copy.engine.to_bytes();
    let mut out = Encoder::with_capacity(engine.len() + copy.payloads.len() * 64 + 256);
    for byte in MAGIC {
        out.u8(*byte);
    }
    out.u32(FORMAT);
    out.str(&definition.to_json());
    out.usize(copy.payloads.len());
    let mut ids: Vec<&u64> = copy.payloads.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let payload = &copy.payloads[id];
        out.u64(*id);
        out.usize(payload.len());
        for (key, value) in payload.iter() {
            out.str(key);
            out.str(value);
        }
    }
    out.bytes(&engine);
    let mut bytes = out.into_bytes();
    let checksum = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Reads an index file of index `name`; the error says what was wrong.
fn decode_index(name: &str, bytes: &[u8], changed: i64) -> Result<SnapshotIndex, String> {
    let Some((body, checksum)) = bytes.split_last_chunk::<4>() else {
        return Err("shorter than its checksum".to_owned());
    };
    if crc32fast::hash(body) != u32::from_le_bytes(*checksum) {
        return Err("the checksum does not match".to_owned());
    }
    let mut input = Decoder::new(body);
    let damaged = |error: pharos_vector::VectorError| error.to_string();
    for byte in MAGIC {
        if input.u8().map_err(damaged)? != *byte {
            return Err("not an index snapshot".to_owned());
        }
    }
    let format = input.u32().map_err(damaged)?;
    if format != FORMAT {
        return Err(format!("layout {format}; this build reads layout {FORMAT}"));
    }
    let definition =
        IndexDefinition::from_json(input.str().map_err(damaged)?).map_err(|e| e.to_string())?;
    let count = input.usize().map_err(damaged)?;
    let mut payloads = HashMap::with_capacity(count.min(body.len() / 9));
    for _ in 0..count {
        let id = input.u64().map_err(damaged)?;
        let entries = input.usize().map_err(damaged)?;
        let mut payload = BTreeMap::new();
        for _ in 0..entries {
            let key = input.str().map_err(damaged)?.to_owned();
            let value = input.str().map_err(damaged)?.to_owned();
            payload.insert(key, value);
        }
        payloads.insert(id, Payload::new(payload));
    }
    let engine = VectorIndex::from_bytes(
        input.bytes().map_err(damaged)?,
        definition.dimension(),
        definition.metric(),
        definition.index_kind(),
    )
    .map_err(damaged)?;
    if !input.is_empty() {
        return Err("bytes left after the index".to_owned());
    }
    Ok(SnapshotIndex {
        name: name.to_owned(),
        definition,
        copy: IndexCopy { engine, payloads },
        changed,
    })
}

/// `name` in lowercase hex: a file name whatever the index is called.
fn hex(name: &str) -> String {
    name.bytes().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_held_by_one_opener_until_it_lets_go() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("search");
        let held = SnapshotDir::open(path.clone()).expect("first open");
        let clone = held.clone();
        // flock conflicts between open files even in one process, as between two processes.
        let refused = SnapshotDir::open(path.clone()).expect_err("second open");
        assert!(matches!(refused, SnapshotError::InUse { .. }), "{refused}");
        assert!(
            refused.to_string().contains("its own data_dir"),
            "{refused}"
        );
        drop(held);
        assert!(
            SnapshotDir::open(path.clone()).is_err(),
            "a clone still holds it"
        );
        drop(clone);
        SnapshotDir::open(path).expect("open after the holder let go");
    }
}
