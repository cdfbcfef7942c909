//! The outbox's file: a redb database of topics (append-only logs of
//! messages) and, per topic, the committed position of each consumer.
//! Every append is one durable transaction: once [`Outbox::append`]
//! returns, the messages survive `kill -9` of the host and a power cut.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, TableDefinition, WriteTransaction,
};
use tokio::sync::watch;

use super::codec;
use crate::transport::Message;

/// `(topic, sequence)` → timestamp and encoded message.
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// `topic` → the sequence number the next message gets.
const HEADS: TableDefinition<&str, u64> = TableDefinition::new("heads");
/// `(topic, consumer)` → the sequence number after its last acknowledged
/// message.
const CONSUMERS: TableDefinition<(&str, &str), u64> = TableDefinition::new("consumers");

/// Why the outbox could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboxError {
    /// The outbox holds `limit` bytes of messages no consumer has
    /// acknowledged yet; nothing of the refused batch was stored.
    #[error("the outbox {path} is full ({used} of {limit} bytes wait for their consumers)")]
    Full { path: String, used: u64, limit: u64 },
    /// The database file cannot be opened, read or written.
    #[error("outbox {path}: {reason}")]
    Storage { path: String, reason: String },
}

/// A message read back from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sequence: u64,
    pub timestamp_ms: i64,
    pub message: Message,
}

/// One outbox file, shared by everything of the process that uses it
/// (see [`Outbox::open`]).
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    db: Database,
    /// The most the messages may take (bytes as stored).
    limit: u64,
    /// Bytes of the messages stored now.
    used: Mutex<u64>,
    /// Per topic, its head (next sequence number), to wake sources.
    heads: Mutex<BTreeMap<String, watch::Sender<u64>>>,
}

/// Every outbox file the process opened: redb opens a file once.
static OPEN: Mutex<BTreeMap<PathBuf, std::sync::Weak<Outbox>>> = Mutex::new(BTreeMap::new());

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Outbox {
    /// The outbox at `path`, created if missing, or the one the process
    /// already opened there. `limit`: the most its messages may take, in
    /// bytes (the first opener's limit stays).
    pub fn open(path: &Path, limit: u64) -> Result<Arc<Outbox>, OutboxError> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(outbox) = open.get(path).and_then(std::sync::Weak::upgrade) {
            return Ok(outbox);
        }
        let outbox = Arc::new(Outbox::create(path, limit)?);
        open.insert(path.to_owned(), Arc::downgrade(&outbox));
        Ok(outbox)
    }

    fn create(path: &Path, limit: u64) -> Result<Outbox, OutboxError> {
        let storage = |e: &dyn std::fmt::Display| OutboxError::Storage {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| storage(&e))?;
        }
        let db = Database::create(path).map_err(|e| storage(&e))?;
        let tx = db.begin_write().map_err(|e| storage(&e))?;
        tx.open_table(MESSAGES).map_err(|e| storage(&e))?;
        tx.open_table(HEADS).map_err(|e| storage(&e))?;
        tx.open_table(CONSUMERS).map_err(|e| storage(&e))?;
        tx.commit().map_err(|e| storage(&e))?;
        let outbox = Outbox {
            path: path.to_owned(),
            db,
            limit,
            used: Mutex::new(0),
            heads: Mutex::default(),
        };
        *outbox.lock_used() = outbox.scan_used()?;
        Ok(outbox)
    }

    fn storage(&self, e: impl std::fmt::Display) -> OutboxError {
        OutboxError::Storage {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    fn lock_used(&self) -> MutexGuard<'_, u64> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn scan_used(&self) -> Result<u64, OutboxError> {
        let tx = self.db.begin_read().map_err(|e| self.storage(e))?;
        let table = tx.open_table(MESSAGES).map_err(|e| self.storage(e))?;
        let mut used = 0;
        for entry in table.iter().map_err(|e| self.storage(e))? {
            let (_, value) = entry.map_err(|e| self.storage(e))?;
            used += value.value().len() as u64;
        }
        Ok(used)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the stored messages take, and the limit.
    pub fn usage(&self) -> (u64, u64) {
        (*self.lock_used(), self.limit)
    }

    /// A receiver of topic `topic`'s head: changes on every append.
    pub fn watch(&self, topic: &str) -> watch::Receiver<u64> {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        heads
            .entry(topic.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn wake(&self, topic: &str, head: u64) {
        let heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = heads.get(topic) {
            tx.send_replace(head);
        }
    }

    /// Appends `messages` to `topic` in one durable transaction; returns
    /// their sequence numbers. All or nothing: a full outbox stores none.
    /// Blocking (it waits for the disk): call it off the async threads.
    pub fn append(
        &self,
        topic: &str,
        messages: &[Message],
    ) -> Result<std::ops::Range<u64>, OutboxError> {
        let timestamp = now_ms();
        let encoded: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| codec::encode(timestamp, m))
            .collect();
        let size: u64 = encoded.iter().map(|e| e.len() as u64).sum();
        let mut used = self.lock_used();
        if *used + size > self.limit {
            return Err(OutboxError::Full {
                path: self.path.display().to_string(),
                used: *used,
                limit: self.limit,
            });
        }
        let tx = self.db.begin_write().map_err(|e| self.storage(e))?;
        let range = {
            let mut heads = tx.open_table(HEADS).map_err(|e| self.storage(e))?;
            let start = heads
                .get(topic)
                .map_err(|e| self.storage(e))?
                .map_or(0, |v| v.value());
            let mut table = tx.open_table(MESSAGES).map_err(|e| self.storage(e))?;
            for (i, value) in encoded.iter().enumerate() {
                table
                    .insert((topic, start + i as u64), value.as_slice())
                    .map_err(|e| self.storage(e))?;
            }
            let end = start + encoded.len() as u64;
            heads.insert(topic, end).map_err(|e| self.storage(e))?;
            start..end
        };
        tx.commit().map_err(|e| self.storage(e))?;
        *used += size;
        drop(used);
        self.wake(topic, range.end);
        Ok(range)
    }

    /// The sequence number the next message of `topic` gets.
    pub fn head(&self, topic: &str) -> Result<u64, OutboxError> {
        let tx = self.db.begin_read().map_err(|e| self.storage(e))?;
        let heads = tx.open_table(HEADS).map_err(|e| self.storage(e))?;
        Ok(heads
            .get(topic)
            .map_err(|e| self.storage(e))?
            .map_or(0, |v| v.value()))
    }

    /// Up to `max` messages of `topic` from sequence number `from` on.
    pub fn read(&self, topic: &str, from: u64, max: usize) -> Result<Vec<Stored>, OutboxError> {
        let tx = self.db.begin_read().map_err(|e| self.storage(e))?;
        let table = tx.open_table(MESSAGES).map_err(|e| self.storage(e))?;
        let mut read = Vec::new();
        for entry in table
            .range((topic, from)..=(topic, u64::MAX))
            .map_err(|e| self.storage(e))?
            .take(max)
        {
            let (key, value) = entry.map_err(|e| self.storage(e))?;
            let (_, sequence) = key.value();
            let (timestamp_ms, message) = codec::decode(value.value())
                .map_err(|e| self.storage(format!("message {sequence} of topic {topic}: {e}")))?;
            read.push(Stored {
                sequence,
                timestamp_ms,
                message,
            });
        }
        Ok(read)
    }

    /// Where consumer `consumer` of `topic` resumes; registers it (from
    /// the first message still stored, or from the head when `latest`)
    /// if it is new, so that nothing it has not read is trimmed.
    pub fn join(&self, topic: &str, consumer: &str, latest: bool) -> Result<u64, OutboxError> {
        let tx = self.db.begin_write().map_err(|e| self.storage(e))?;
        let position = {
            let mut consumers = tx.open_table(CONSUMERS).map_err(|e| self.storage(e))?;
            let known = consumers
                .get((topic, consumer))
                .map_err(|e| self.storage(e))?
                .map(|v| v.value());
            let heads = tx.open_table(HEADS).map_err(|e| self.storage(e))?;
            let head = heads
                .get(topic)
                .map_err(|e| self.storage(e))?
                .map_or(0, |v| v.value());
            let position = match known {
                Some(p) if latest => p.max(head),
                Some(p) => p,
                None if latest => head,
                None => 0,
            };
            consumers
                .insert((topic, consumer), position)
                .map_err(|e| self.storage(e))?;
            position
        };
        let freed = self.trim(&tx, topic)?;
        tx.commit().map_err(|e| self.storage(e))?;
        self.release(freed);
        Ok(position)
    }

    /// Moves `consumer`'s position on `topic` to `position` (never back)
    /// and drops the messages every consumer has acknowledged.
    pub fn commit(&self, topic: &str, consumer: &str, position: u64) -> Result<(), OutboxError> {
        let tx = self.db.begin_write().map_err(|e| self.storage(e))?;
        {
            let mut consumers = tx.open_table(CONSUMERS).map_err(|e| self.storage(e))?;
            let known = consumers
                .get((topic, consumer))
                .map_err(|e| self.storage(e))?
                .map_or(0, |v| v.value());
            if position > known {
                consumers
                    .insert((topic, consumer), position)
                    .map_err(|e| self.storage(e))?;
            }
        }
        let freed = self.trim(&tx, topic)?;
        tx.commit().map_err(|e| self.storage(e))?;
        self.release(freed);
        Ok(())
    }

    /// The committed position of every consumer of `topic`.
    pub fn consumers(&self, topic: &str) -> Result<BTreeMap<String, u64>, OutboxError> {
        let tx = self.db.begin_read().map_err(|e| self.storage(e))?;
        let consumers = tx.open_table(CONSUMERS).map_err(|e| self.storage(e))?;
        let mut found = BTreeMap::new();
        for entry in consumers
            .range((topic, "")..)
            .map_err(|e| self.storage(e))?
        {
            let (key, value) = entry.map_err(|e| self.storage(e))?;
            let (t, consumer) = key.value();
            if t != topic {
                break;
            }
            found.insert(consumer.to_owned(), value.value());
        }
        Ok(found)
    }

    /// Forgets consumer `consumer` on every topic.
    pub fn remove_consumer(&self, consumer: &str) -> Result<(), OutboxError> {
        let tx = self.db.begin_write().map_err(|e| self.storage(e))?;
        let mut topics = Vec::new();
        {
            let mut consumers = tx.open_table(CONSUMERS).map_err(|e| self.storage(e))?;
            consumers
                .retain(|(topic, c), _| {
                    if c == consumer {
                        topics.push(topic.to_owned());
                        false
                    } else {
                        true
                    }
                })
                .map_err(|e| self.storage(e))?;
        }
        let mut freed = 0;
        for topic in topics {
            freed += self.trim(&tx, &topic)?;
        }
        tx.commit().map_err(|e| self.storage(e))?;
        self.release(freed);
        Ok(())
    }

    /// Removes topic `topic`, its messages and its consumers.
    pub fn remove_topic(&self, topic: &str) -> Result<(), OutboxError> {
        let tx = self.db.begin_write().map_err(|e| self.storage(e))?;
        let mut freed = 0;
        {
            let mut table = tx.open_table(MESSAGES).map_err(|e| self.storage(e))?;
            table
                .retain_in((topic, 0)..=(topic, u64::MAX), |_, v| {
                    freed += v.len() as u64;
                    false
                })
                .map_err(|e| self.storage(e))?;
            let mut consumers = tx.open_table(CONSUMERS).map_err(|e| self.storage(e))?;
            consumers
                .retain(|(t, _), _| t != topic)
                .map_err(|e| self.storage(e))?;
            let mut heads = tx.open_table(HEADS).map_err(|e| self.storage(e))?;
            heads.remove(topic).map_err(|e| self.storage(e))?;
        }
        tx.commit().map_err(|e| self.storage(e))?;
        self.release(freed);
        Ok(())
    }

    /// Drops, inside `tx`, the messages of `topic` below the lowest
    /// consumer position (everything is kept while the topic has no
    /// consumer); returns the bytes freed, which the caller subtracts
    /// from `used` once `tx` is committed.
    fn trim(&self, tx: &WriteTransaction, topic: &str) -> Result<u64, OutboxError> {
        let lowest = {
            let consumers = tx.open_table(CONSUMERS).map_err(|e| self.storage(e))?;
            let mut lowest: Option<u64> = None;
            for entry in consumers
                .range((topic, "")..)
                .map_err(|e| self.storage(e))?
            {
                let (key, value) = entry.map_err(|e| self.storage(e))?;
                if key.value().0 != topic {
                    break;
                }
                lowest = Some(lowest.map_or(value.value(), |l| l.min(value.value())));
            }
            lowest
        };
        let Some(lowest) = lowest.filter(|l| *l > 0) else {
            return Ok(0);
        };
        let mut freed = 0;
        let mut table = tx.open_table(MESSAGES).map_err(|e| self.storage(e))?;
        table
            .retain_in((topic, 0)..(topic, lowest), |_, v| {
                freed += v.len() as u64;
                false
            })
            .map_err(|e| self.storage(e))?;
        Ok(freed)
    }

    fn release(&self, freed: u64) {
        let mut used = self.lock_used();
        *used = used.saturating_sub(freed);
    }
}
