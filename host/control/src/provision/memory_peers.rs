//! Other FNAAs in a map, for tests of the service: flows they offer,
//! the copies they made, and failures on request.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{PeerError, Peers, RemoteCopy};
use crate::names::DnsName;
use crate::store::{BrokerBinding, Capability, RemoteSource, RemoteState};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remote flows by name, and the copies made of them with the
/// capability that made each.
#[derive(Debug, Default)]
pub struct MemoryPeers {
    flows: Mutex<BTreeMap<DnsName, BrokerBinding>>,
    copies: Mutex<BTreeMap<DnsName, Capability>>,
    fail: Mutex<Option<PeerError>>,
    made: AtomicU32,
}

impl MemoryPeers {
    /// Offers `flow`, carried as `binding`.
    pub fn offer(&self, flow: &DnsName, binding: BrokerBinding) {
        lock(&self.flows).insert(flow.clone(), binding);
    }
    /// The copies that exist now.
    pub fn copies(&self) -> Vec<DnsName> {
        lock(&self.copies).keys().cloned().collect()
    }
    /// Ends a copy as its publisher would.
    pub fn revoke(&self, copy: &DnsName) {
        lock(&self.copies).remove(copy);
    }
    /// Makes every call fail with `error` (`None`: succeed).
    pub fn fail(&self, error: Option<PeerError>) {
        *lock(&self.fail) = error;
    }
    fn failure(&self) -> Result<(), PeerError> {
        match lock(&self.fail).clone() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Peers for MemoryPeers {
    async fn subscribe(
        &self,
        flow: &DnsName,
        capability: &Capability,
    ) -> Result<RemoteCopy, PeerError> {
        self.failure()?;
        let Some(binding) = lock(&self.flows).get(flow).cloned() else {
            return Err(PeerError::NoFnaa {
                flow: flow.to_string(),
                reason: "NXDOMAIN".into(),
            });
        };
        let n = self.made.fetch_add(1, Ordering::Relaxed) + 1;
        let copy = flow
            .child(&format!("copy{n:03}"))
            .map_err(|e| PeerError::Invalid {
                fnaa: "fnaa.remote.example".into(),
                step: format!("SUBSCRIBE {flow}"),
                what: e.to_string(),
            })?;
        lock(&self.copies).insert(copy.clone(), capability.clone());
        Ok(RemoteCopy {
            copy: copy.clone(),
            source: RemoteSource {
                fnaa: "fnaa.remote.example".into(),
                address: "192.0.2.1:61000".into(),
                tls: true,
                binding: BrokerBinding {
                    topic: copy.to_string(),
                    ..binding
                },
                capability: capability.clone(),
                state: RemoteState::Active,
                mode: crate::store::TransferMode::Direct,
            },
        })
    }

    async fn unsubscribe(&self, source: &RemoteSource, copy: &DnsName) -> Result<(), PeerError> {
        self.failure()?;
        let mut copies = lock(&self.copies);
        match copies.get(copy) {
            Some(owner) if owner != &source.capability => Err(PeerError::Refused {
                fnaa: "fnaa.remote.example".into(),
                step: format!("UNSUBSCRIBE {copy}"),
                code: 551,
                text: "subscription belongs to another user".into(),
            }),
            _ => {
                copies.remove(copy);
                Ok(())
            }
        }
    }

    async fn abandon(&self, _: &DnsName, capability: &Capability) -> Result<usize, PeerError> {
        self.failure()?;
        let mut copies = lock(&self.copies);
        let before = copies.len();
        copies.retain(|_, owner| owner != capability);
        Ok(before - copies.len())
    }

    async fn copy_exists(&self, _: &RemoteSource, copy: &DnsName) -> Result<bool, PeerError> {
        self.failure()?;
        Ok(lock(&self.copies).contains_key(copy))
    }
}
