//! Durable key/value state of plugin instances, kept by the host so that an
//! instance can be evicted and re-created without losing it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use redb::{ReadableDatabase as _, TableDefinition};

/// The state store failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin state store: {0}")]
pub struct StateError(pub String);

/// Where plugin instances keep their state. Keys are grouped by namespace,
/// one namespace per instance.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The value of `key` in `namespace`.
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Applies writes (`None` deletes) atomically.
    fn apply(
        &self,
        namespace: &str,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), StateError>;
    /// Bytes of keys and values stored in `namespace`.
    fn usage(&self, namespace: &str) -> Result<u64, StateError>;
    /// Removes everything in `namespace` (the instance was destroyed).
    fn clear(&self, namespace: &str) -> Result<(), StateError>;
}

fn entry_size(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// Keys and values of each namespace.
type Namespaces = HashMap<String, HashMap<String, Vec<u8>>>;

/// State kept in memory: lost when the process exits.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    namespaces: Mutex<Namespaces>,
}

impl MemoryStateStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Namespaces>, StateError> {
        self.namespaces
            .lock()
            .map_err(|_| StateError("poisoned lock".into()))
    }
}

impl StateStore for MemoryStateStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .lock()?
            .get(namespace)
            .and_then(|ns| ns.get(key))
            .cloned())
    }

    fn apply(
        &self,
        namespace: &str,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), StateError> {
        let mut all = self.lock()?;
        let ns = all.entry(namespace.to_owned()).or_default();
        for (key, value) in writes {
            match value {
                Some(value) => ns.insert(key, value),
                None => ns.remove(&key),
            };
        }
        Ok(())
    }

    fn usage(&self, namespace: &str) -> Result<u64, StateError> {
        Ok(self
            .lock()?
            .get(namespace)
            .map_or(0, |ns| ns.iter().map(|(k, v)| entry_size(k, v)).sum()))
    }

    fn clear(&self, namespace: &str) -> Result<(), StateError> {
        self.lock()?.remove(namespace);
        Ok(())
    }
}

const STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("plugin_state");

/// State in a redb database file: survives restarts. Each `apply` is one
/// durable transaction.
#[derive(Debug)]
pub struct RedbStateStore {
    db: redb::Database,
    /// Usage per namespace, computed on first use and kept up to date.
    usage: Mutex<HashMap<String, u64>>,
}

fn db_error(e: impl std::fmt::Display) -> StateError {
    StateError(e.to_string())
}

impl RedbStateStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StateError(format!("{}: {e}", parent.display())))?;
        }
        let db = redb::Database::create(path)
            .map_err(|e| StateError(format!("{}: {e}", path.display())))?;
        let tx = db.begin_write().map_err(db_error)?;
        tx.open_table(STATE).map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(RedbStateStore {
            db,
            usage: Mutex::default(),
        })
    }

    fn scan_usage(&self, namespace: &str) -> Result<u64, StateError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let table = tx.open_table(STATE).map_err(db_error)?;
        let mut total = 0;
        for entry in table.range((namespace, "")..).map_err(db_error)? {
            let (key, value) = entry.map_err(db_error)?;
            let (ns, key) = key.value();
            if ns != namespace {
                break;
            }
            total += entry_size(key, value.value());
        }
        Ok(total)
    }
}

impl StateStore for RedbStateStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let table = tx.open_table(STATE).map_err(db_error)?;
        Ok(table
            .get((namespace, key))
            .map_err(db_error)?
            .map(|v| v.value().to_vec()))
    }

    fn apply(
        &self,
        namespace: &str,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), StateError> {
        let current = self.usage(namespace)?;
        let mut usage = current as i128;
        let tx = self.db.begin_write().map_err(db_error)?;
        {
            let mut table = tx.open_table(STATE).map_err(db_error)?;
            for (key, value) in &writes {
                let old = match value {
                    Some(value) => table.insert((namespace, key.as_str()), value.as_slice()),
                    None => table.remove((namespace, key.as_str())),
                }
                .map_err(db_error)?;
                if let Some(old) = old {
                    usage -= i128::from(entry_size(key, old.value()));
                }
                if let Some(value) = value {
                    usage += i128::from(entry_size(key, value));
                }
            }
        }
        tx.commit().map_err(db_error)?;
        if let Ok(mut cache) = self.usage.lock() {
            cache.insert(
                namespace.to_owned(),
                u64::try_from(usage.max(0)).unwrap_or(0),
            );
        }
        Ok(())
    }

    fn usage(&self, namespace: &str) -> Result<u64, StateError> {
        if let Some(&known) = self
            .usage
            .lock()
            .map_err(|_| StateError("poisoned lock".into()))?
            .get(namespace)
        {
            return Ok(known);
        }
        let total = self.scan_usage(namespace)?;
        if let Ok(mut cache) = self.usage.lock() {
            cache.insert(namespace.to_owned(), total);
        }
        Ok(total)
    }

    fn clear(&self, namespace: &str) -> Result<(), StateError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        {
            let mut table = tx.open_table(STATE).map_err(db_error)?;
            table
                .retain_in((namespace, "")..=(namespace, "\u{10FFFF}"), |_, _| false)
                .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
        if let Ok(mut cache) = self.usage.lock() {
            cache.remove(namespace);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn StateStore) {
        store
            .apply(
                "a",
                vec![
                    ("k".into(), Some(b"one".to_vec())),
                    ("x".into(), Some(b"2".to_vec())),
                ],
            )
            .unwrap();
        store
            .apply("b", vec![("k".into(), Some(b"other".to_vec()))])
            .unwrap();
        assert_eq!(store.get("a", "k").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(store.usage("a").unwrap(), 4 + 2);
        store.apply("a", vec![("k".into(), None)]).unwrap();
        assert_eq!(store.get("a", "k").unwrap(), None);
        assert_eq!(store.usage("a").unwrap(), 2);
        store.clear("a").unwrap();
        assert_eq!(store.get("a", "x").unwrap(), None);
        assert_eq!(store.get("b", "k").unwrap().as_deref(), Some(&b"other"[..]));
    }

    #[test]
    fn memory_store() {
        exercise(&MemoryStateStore::default());
    }

    #[test]
    fn redb_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        exercise(&RedbStateStore::open(&path).unwrap());
        RedbStateStore::open(&path)
            .unwrap()
            .apply("c", vec![("k".into(), Some(b"v".to_vec()))])
            .unwrap();
        let reopened = RedbStateStore::open(&path).unwrap();
        assert_eq!(reopened.get("c", "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(reopened.usage("c").unwrap(), 2);
    }
}
