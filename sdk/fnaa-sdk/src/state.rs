//! Durable key/value state private to the plugin instance, kept by the host
//! so that it survives the instance being evicted and created again.
//!
//! Writes made while processing a batch are committed by the host only when
//! the batch succeeds. Whether a read sees a write made earlier in the same
//! batch is up to the host; use [`Staged`] to be independent of it (and to
//! read each key from the host only once per batch).
//!
//! Only processors may use state: a connector that calls these functions
//! imports `fnaa:plugin/state` and cannot be instantiated as a connector.
//!
//! Off wasm32 (unit tests) the state is an in-memory map private to the
//! current thread, so each `#[test]` starts empty.

use std::collections::BTreeMap;

/// Why the host refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The instance's state would grow past its quota (bytes).
    #[error("the state would grow past its quota of {0} bytes")]
    QuotaExceeded(u64),
    /// The key or value is larger than the host accepts.
    #[error("state entry too large: {0}")]
    TooLarge(String),
}

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    imp::get(key)
}

/// Stores `value` under `key`, replacing any earlier value.
pub fn set(key: &str, value: &[u8]) -> Result<(), StateError> {
    imp::set(key, value)
}

/// Removes `key`; removing an absent key is not an error.
pub fn delete(key: &str) {
    imp::delete(key);
}

/// A batch's view of the state: reads go to the host once per key and are
/// cached, writes are kept in guest memory until [`Staged::commit`].
///
/// The host commits state only when a batch succeeds, so writing everything
/// at the end of `process` has the same effect as writing as you go, with
/// fewer calls, and reads see earlier writes of the same batch whatever the
/// host does.
#[derive(Debug, Default)]
pub struct Staged {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    value: Option<Vec<u8>>,
    dirty: bool,
}

impl Staged {
    /// An empty view.
    pub fn new() -> Self {
        Staged::default()
    }

    /// The value under `key`, as written earlier in this view or else as the
    /// host has it.
    pub fn get(&mut self, key: &str) -> Option<&[u8]> {
        if !self.entries.contains_key(key) {
            let value = get(key);
            self.entries.insert(
                key.to_owned(),
                Entry {
                    value,
                    dirty: false,
                },
            );
        }
        self.entries
            .get(key)
            .and_then(|entry| entry.value.as_deref())
    }

    /// Stages `value` under `key`.
    pub fn set(&mut self, key: &str, value: Vec<u8>) {
        self.stage(key, Some(value));
    }

    /// Stages the removal of `key`.
    pub fn delete(&mut self, key: &str) {
        self.stage(key, None);
    }

    fn stage(&mut self, key: &str, value: Option<Vec<u8>>) {
        match self.entries.get_mut(key) {
            Some(entry) => {
                entry.value = value;
                entry.dirty = true;
            }
            None => {
                self.entries
                    .insert(key.to_owned(), Entry { value, dirty: true });
            }
        }
    }

    /// True when nothing was written.
    pub fn is_clean(&self) -> bool {
        self.entries.values().all(|entry| !entry.dirty)
    }

    /// Writes the staged changes to the host, in key order. Stops at the
    /// first refused write: return an error from `process` then, so that the
    /// host rolls back the writes already made.
    pub fn commit(self) -> Result<(), StateError> {
        for (key, entry) in self.entries {
            if !entry.dirty {
                continue;
            }
            match entry.value {
                Some(value) => set(&key, &value)?,
                None => delete(&key),
            }
        }
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::StateError;
    use crate::bindings::processor::fnaa::plugin::state as host;

    pub fn get(key: &str) -> Option<Vec<u8>> {
        host::get(key)
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), StateError> {
        host::set(key, value).map_err(|e| match e {
            host::StateError::QuotaExceeded(quota) => StateError::QuotaExceeded(quota),
            host::StateError::TooLarge(what) => StateError::TooLarge(what),
        })
    }

    pub fn delete(key: &str) {
        host::delete(key);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::StateError;

    thread_local! {
        static STATE: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub fn get(key: &str) -> Option<Vec<u8>> {
        STATE.with_borrow(|state| state.get(key).cloned())
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), StateError> {
        STATE.with_borrow_mut(|state| state.insert(key.to_owned(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &str) {
        STATE.with_borrow_mut(|state| state.remove(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_reads_its_own_writes_and_commits_them() {
        set("a", b"1").unwrap();
        set("gone", b"x").unwrap();
        let mut staged = Staged::new();
        assert_eq!(staged.get("a"), Some(&b"1"[..]));
        assert!(staged.is_clean());
        staged.set("a", b"2".to_vec());
        staged.delete("gone");
        staged.set("new", b"3".to_vec());
        assert_eq!(staged.get("a"), Some(&b"2"[..]));
        assert_eq!(staged.get("gone"), None);
        // Nothing reaches the host before commit.
        assert_eq!(get("a"), Some(b"1".to_vec()));
        staged.commit().unwrap();
        assert_eq!(get("a"), Some(b"2".to_vec()));
        assert_eq!(get("gone"), None);
        assert_eq!(get("new"), Some(b"3".to_vec()));
    }
}
