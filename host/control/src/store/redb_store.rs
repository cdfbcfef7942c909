//! [`Store`] in an embedded redb database. Records are JSON values keyed by
//! name, one table per kind. Writes go through one writer thread that
//! commits whatever changes are waiting in one durable transaction (group
//! commit), so that many concurrent sessions share each fsync.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::{Account, Change, Flow, Namespace, Processor, Store, StoreError, Subscription};
use crate::names::DnsName;

type Records = TableDefinition<'static, &'static str, &'static [u8]>;
const ACCOUNTS: Records = TableDefinition::new("accounts");
const NAMESPACES: Records = TableDefinition::new("namespaces");
const FLOWS: Records = TableDefinition::new("flows");
const SUBSCRIPTIONS: Records = TableDefinition::new("subscriptions");
const PROCESSORS: Records = TableDefinition::new("processors");

/// Changes committed together at most.
const MAX_BATCH: usize = 1024;

struct Job {
    change: Change,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The redb-backed store. Dropping it waits for the writer to finish and
/// closes the file.
pub struct RedbStore {
    db: Arc<Database>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl RedbStore {
    /// Opens `path`, creating the database when it does not exist.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = Database::create(path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Backend(format!(
                "{} is in use by another process (is `fnaa serve` running?)",
                path.display()
            )),
            other => StoreError::Backend(format!("cannot open {}: {other}", path.display())),
        })?;
        RedbStore::start(db)
    }

    /// A store in memory, for tests and benchmarks.
    pub fn in_memory() -> Result<RedbStore, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(backend)?;
        RedbStore::start(db)
    }

    fn start(db: Database) -> Result<RedbStore, StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        for table in [ACCOUNTS, NAMESPACES, FLOWS, SUBSCRIPTIONS, PROCESSORS] {
            txn.open_table(table).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        let db = Arc::new(db);
        let (jobs, queue) = mpsc::channel();
        let writer_db = Arc::clone(&db);
        let writer = std::thread::Builder::new()
            .name("fnaa-store-writer".into())
            .spawn(move || write_loop(&writer_db, &queue))
            .map_err(backend)?;
        Ok(RedbStore {
            db,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    fn get<T: DeserializeOwned>(&self, table: Records, key: &str) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(table).map_err(backend)?;
        read(&table, key)
    }

    fn all<T: DeserializeOwned>(&self, table: Records) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(table).map_err(backend)?;
        read_all(&table)
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has committed the rest.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn read<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(backend)? {
        Some(value) => serde_json::from_slice(value.value())
            .map(Some)
            .map_err(backend),
        None => Ok(None),
    }
}

fn read_all<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<T>, StoreError> {
    let mut records = Vec::new();
    for entry in table.range::<&str>(..).map_err(backend)? {
        let (_, value) = entry.map_err(backend)?;
        records.push(serde_json::from_slice(value.value()).map_err(backend)?);
    }
    Ok(records)
}

fn write_loop(db: &Database, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(db, &batch) {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.done.send(outcome);
                }
            }
            Err(error) => {
                tracing::error!(%error, "store commit failed");
                for job in batch {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
        }
    }
}

struct Tables<'txn> {
    accounts: Table<'txn, &'static str, &'static [u8]>,
    namespaces: Table<'txn, &'static str, &'static [u8]>,
    flows: Table<'txn, &'static str, &'static [u8]>,
    subscriptions: Table<'txn, &'static str, &'static [u8]>,
    processors: Table<'txn, &'static str, &'static [u8]>,
}

fn commit_batch(db: &Database, batch: &[Job]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let txn = db.begin_write().map_err(backend)?;
    let outcomes = {
        let mut tables = Tables {
            accounts: txn.open_table(ACCOUNTS).map_err(backend)?,
            namespaces: txn.open_table(NAMESPACES).map_err(backend)?,
            flows: txn.open_table(FLOWS).map_err(backend)?,
            subscriptions: txn.open_table(SUBSCRIPTIONS).map_err(backend)?,
            processors: txn.open_table(PROCESSORS).map_err(backend)?,
        };
        batch
            .iter()
            .map(|job| apply_change(&mut tables, &job.change))
            .collect::<Vec<_>>()
    };
    txn.commit().map_err(backend)?;
    Ok(outcomes)
}

fn put<T: Serialize>(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(backend)?;
    table.insert(key, bytes.as_slice()).map_err(backend)?;
    Ok(())
}

fn exists(table: &Table<'_, &'static str, &'static [u8]>, key: &str) -> Result<bool, StoreError> {
    Ok(table.get(key).map_err(backend)?.is_some())
}

fn require(
    table: &Table<'_, &'static str, &'static [u8]>,
    kind: &'static str,
    key: &str,
) -> Result<(), StoreError> {
    if exists(table, key)? {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            kind,
            name: key.to_owned(),
        })
    }
}

fn require_absent(
    table: &Table<'_, &'static str, &'static [u8]>,
    kind: &'static str,
    key: &str,
) -> Result<(), StoreError> {
    if exists(table, key)? {
        Err(StoreError::AlreadyExists {
            kind,
            name: key.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn remove(table: &mut Table<'_, &'static str, &'static [u8]>, key: &str) -> Result<(), StoreError> {
    table.remove(key).map_err(backend)?;
    Ok(())
}

fn flow_exists(tables: &Tables<'_>, name: &DnsName) -> Result<(), StoreError> {
    if exists(&tables.flows, name.as_str())? {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("flow {name} does not exist")))
    }
}

/// A short list of names for an error text.
fn some_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let mut text = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

/// Checks the preconditions of `change`, then writes it. Nothing is
/// written when a check fails, so the other changes of the batch commit.
fn apply_change(tables: &mut Tables<'_>, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::CreateAccount(account) => {
            require_absent(&tables.accounts, "account", &account.name)?;
            put(&mut tables.accounts, &account.name, account)
        }
        Change::ReplaceAccount(account) => {
            require(&tables.accounts, "account", &account.name)?;
            put(&mut tables.accounts, &account.name, account)
        }
        Change::DeleteAccount(name) => {
            require(&tables.accounts, "account", name)?;
            let namespaces: Vec<Namespace> = read_all(&tables.namespaces)?;
            let owned: Vec<&Namespace> = namespaces.iter().filter(|ns| &ns.owner == name).collect();
            if !owned.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "account {name} still owns the namespaces {}",
                    some_names(owned.iter().map(|ns| ns.name.as_str()))
                )));
            }
            remove(&mut tables.accounts, name)
        }
        Change::CreateNamespace(namespace) => {
            require_absent(&tables.namespaces, "namespace", namespace.name.as_str())?;
            if !exists(&tables.accounts, &namespace.owner)? {
                return Err(StoreError::Conflict(format!(
                    "there is no account {}",
                    namespace.owner
                )));
            }
            let existing: Vec<Namespace> = read_all(&tables.namespaces)?;
            if let Some(other) = existing.iter().find(|other| {
                namespace.name.is_within(&other.name) || other.name.is_within(&namespace.name)
            }) {
                return Err(StoreError::Conflict(format!(
                    "namespace {} overlaps the existing namespace {}",
                    namespace.name, other.name
                )));
            }
            put(&mut tables.namespaces, namespace.name.as_str(), namespace)
        }
        Change::DeleteNamespace(name) => {
            require(&tables.namespaces, "namespace", name.as_str())?;
            let flows: Vec<Flow> = read_all(&tables.flows)?;
            let inside: Vec<&Flow> = flows
                .iter()
                .filter(|flow| &flow.namespace == name)
                .collect();
            if !inside.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "namespace {name} still holds the flows {}",
                    some_names(inside.iter().map(|flow| flow.name.as_str()))
                )));
            }
            let processors: Vec<Processor> = read_all(&tables.processors)?;
            let inside: Vec<&Processor> = processors
                .iter()
                .filter(|p| p.name.is_within(name))
                .collect();
            if !inside.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "namespace {name} still holds the processors {}",
                    some_names(inside.iter().map(|p| p.name.as_str()))
                )));
            }
            remove(&mut tables.namespaces, name.as_str())
        }
        Change::CreateFlow(flow) => {
            require_absent(&tables.flows, "flow", flow.name.as_str())?;
            if !exists(&tables.namespaces, flow.namespace.as_str())? {
                return Err(StoreError::Conflict(format!(
                    "namespace {} does not exist",
                    flow.namespace
                )));
            }
            put(&mut tables.flows, flow.name.as_str(), flow)
        }
        Change::ReplaceFlow(flow) => {
            require(&tables.flows, "flow", flow.name.as_str())?;
            put(&mut tables.flows, flow.name.as_str(), flow)
        }
        Change::DeleteFlow(name) => {
            require(&tables.flows, "flow", name.as_str())?;
            let subscriptions: Vec<Subscription> = read_all(&tables.subscriptions)?;
            if let Some(user) = subscriptions
                .iter()
                .find(|s| &s.source == name || &s.id == name || s.local.as_ref() == Some(name))
            {
                return Err(StoreError::Conflict(format!(
                    "flow {name} is used by the subscription {}",
                    user.id
                )));
            }
            let processors: Vec<Processor> = read_all(&tables.processors)?;
            if let Some(user) = processors
                .iter()
                .find(|p| p.inputs.contains(name) || p.outputs.contains(name))
            {
                return Err(StoreError::Conflict(format!(
                    "flow {name} is used by the processor {}",
                    user.name
                )));
            }
            remove(&mut tables.flows, name.as_str())
        }
        Change::CreateSubscription(subscription) => {
            require_absent(
                &tables.subscriptions,
                "subscription",
                subscription.id.as_str(),
            )?;
            if !subscription.is_remote() {
                flow_exists(tables, &subscription.source)?;
                flow_exists(tables, &subscription.id)?;
            }
            if let Some(local) = &subscription.local {
                flow_exists(tables, local)?;
            }
            put(
                &mut tables.subscriptions,
                subscription.id.as_str(),
                subscription,
            )
        }
        Change::ReplaceSubscription(subscription) => {
            require(
                &tables.subscriptions,
                "subscription",
                subscription.id.as_str(),
            )?;
            put(
                &mut tables.subscriptions,
                subscription.id.as_str(),
                subscription,
            )
        }
        Change::DeleteSubscription(id) => {
            require(&tables.subscriptions, "subscription", id.as_str())?;
            remove(&mut tables.subscriptions, id.as_str())
        }
        Change::CreateProcessor(processor) => {
            require_absent(&tables.processors, "processor", processor.name.as_str())?;
            for flow in processor.inputs.iter().chain(&processor.outputs) {
                flow_exists(tables, flow)?;
            }
            put(&mut tables.processors, processor.name.as_str(), processor)
        }
        Change::ReplaceProcessor(processor) => {
            require(&tables.processors, "processor", processor.name.as_str())?;
            put(&mut tables.processors, processor.name.as_str(), processor)
        }
        Change::DeleteProcessor(name) => {
            require(&tables.processors, "processor", name.as_str())?;
            remove(&mut tables.processors, name.as_str())
        }
    }
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.get(ACCOUNTS, name)
    }
    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.all(ACCOUNTS)
    }
    async fn namespace(&self, name: &DnsName) -> Result<Option<Namespace>, StoreError> {
        self.get(NAMESPACES, name.as_str())
    }
    async fn namespaces(&self) -> Result<Vec<Namespace>, StoreError> {
        self.all(NAMESPACES)
    }
    async fn flow(&self, name: &DnsName) -> Result<Option<Flow>, StoreError> {
        self.get(FLOWS, name.as_str())
    }
    async fn flows(&self, namespace: Option<&DnsName>) -> Result<Vec<Flow>, StoreError> {
        let mut flows: Vec<Flow> = self.all(FLOWS)?;
        if let Some(namespace) = namespace {
            flows.retain(|flow| &flow.namespace == namespace);
        }
        Ok(flows)
    }
    async fn subscription(&self, id: &DnsName) -> Result<Option<Subscription>, StoreError> {
        self.get(SUBSCRIPTIONS, id.as_str())
    }
    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.all(SUBSCRIPTIONS)
    }
    async fn processor(&self, name: &DnsName) -> Result<Option<Processor>, StoreError> {
        self.get(PROCESSORS, name.as_str())
    }
    async fn processors(&self) -> Result<Vec<Processor>, StoreError> {
        self.all(PROCESSORS)
    }
    async fn apply(&self, change: Change) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        jobs.send(Job { change, done })
            .map_err(|_| StoreError::Backend("the store writer stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Backend("the store writer stopped".into()))?
    }
}
