//! Reading again where tansu 0.6 resumes mid-batch: the check of the
//! first messages of a partition assigned at a committed offset
//! ([`Resuming`]), the seek further back it may ask for ([`seek_back`]),
//! and the look at partitions that stay silent ([`check_silent`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{Consumer, StreamConsumer};

use super::REQUEST_TIMEOUT;
use crate::transport::kafka::Context;

/// The partitions whose reading at a committed offset is being checked.
///
/// A Kafka broker answers a fetch at offset `c` with the record batch that
/// holds `c`, from which the client skips the records before `c`. tansu
/// 0.6 answers with the batches that *start* at or after `c`: resuming in
/// the middle of a batch (where a consumer committed after some of its
/// records) would silently skip the rest of that batch. So when the first
/// message of a partition resumed at `c` comes after `c`, the source reads
/// the partition again from further back (but not before its log start),
/// drops what comes before `c` (it was committed) and goes on from `c`;
/// if nothing comes at or before `c` even from the log start, the gap is
/// real (compaction, transaction markers) and reading goes on. When `c` is
/// inside the last batch, tansu sends nothing at all: see
/// [`check_silent`].
#[derive(Clone, Default)]
pub(super) struct Resuming(Arc<Mutex<Checks>>);

/// The check of each partition (topic, partition) under check.
type Checks = HashMap<(Arc<str>, i32), Resume>;

/// How far back the first look for a batch goes, in offsets (it then goes
/// four times as far each time).
const FIRST_STEP: i64 = 1000;

/// The check of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resume {
    /// The committed offset: the first message to deliver.
    committed: i64,
    phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Reading from the committed offset, nothing seen yet.
    AtCommitted,
    /// A seek back `step` offsets is being prepared; every message is
    /// dropped meanwhile (it is read again after the seek).
    Seeking { step: i64 },
    /// Reading again from `from`, which is not before the log start
    /// `floor`; `sought` once the seek took effect (a message after
    /// `committed` may be one fetched before it); `covered` once a message
    /// before `committed` came after it.
    Back {
        from: i64,
        floor: i64,
        step: i64,
        sought: bool,
        covered: bool,
    },
}

/// What to do with a message of a partition under check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Deliver it; the check is over.
    Deliver,
    /// Drop it: it was committed already, or it is read again later.
    Drop,
    /// Drop it and read the partition again from `step` offsets before
    /// the committed offset.
    SeekBack { step: i64 },
}

impl Resume {
    fn new(committed: i64) -> Self {
        Resume {
            committed,
            phase: Phase::AtCommitted,
        }
    }

    /// The verdict on the message at `offset`.
    fn on_message(&mut self, offset: i64) -> Verdict {
        let c = self.committed;
        match &mut self.phase {
            // At `c`, or before it: the broker moved the position back (an
            // offset out of range reset, say): deliver, never skip.
            Phase::AtCommitted if offset <= c => Verdict::Deliver,
            Phase::AtCommitted => {
                let step = offset.saturating_sub(c).saturating_mul(2).max(FIRST_STEP);
                self.phase = Phase::Seeking { step };
                Verdict::SeekBack { step }
            }
            Phase::Seeking { .. } => Verdict::Drop,
            Phase::Back { from, covered, .. } if offset < c => {
                if *from < c {
                    // Read again on purpose: committed already.
                    *covered = true;
                    Verdict::Drop
                } else {
                    Verdict::Deliver
                }
            }
            Phase::Back { .. } if offset == c => Verdict::Deliver,
            Phase::Back { covered: true, .. } => Verdict::Deliver,
            Phase::Back { sought: false, .. } => Verdict::Drop,
            Phase::Back { from, floor, .. } if *from >= c || *from <= *floor => Verdict::Deliver,
            Phase::Back { step, .. } => {
                let step = step.saturating_mul(4);
                self.phase = Phase::Seeking { step };
                Verdict::SeekBack { step }
            }
        }
    }
}

impl Resuming {
    fn lock(&self) -> std::sync::MutexGuard<'_, Checks> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the first messages of these partitions (topic, partition,
    /// committed offset).
    pub(super) fn expect(&self, partitions: &[(Arc<str>, i32, i64)]) {
        let mut map = self.lock();
        for (topic, p, c) in partitions {
            map.insert((topic.clone(), *p), Resume::new(*c));
        }
    }

    pub(super) fn forget(&self, partitions: &[(Arc<str>, i32, i64)]) {
        let mut map = self.lock();
        for (topic, p, _) in partitions {
            map.remove(&(topic.clone(), *p));
        }
    }

    /// True when the message at `offset` is to be delivered; starts the
    /// seek back when the check asks for it.
    pub(super) fn keep(
        &self,
        consumer: &Arc<StreamConsumer<Context>>,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
    ) -> bool {
        let mut map = self.lock();
        if map.is_empty() {
            return true;
        }
        let key = (topic.clone(), partition);
        let Some(resume) = map.get_mut(&key) else {
            return true;
        };
        match resume.on_message(offset) {
            Verdict::Deliver => {
                map.remove(&key);
                true
            }
            Verdict::Drop => false,
            Verdict::SeekBack { step } => {
                let committed = resume.committed;
                tracing::debug!(
                    "kafka {topic} [{partition}]: resumed at offset {committed} but got {offset} first"
                );
                drop(map);
                tokio::spawn(seek_back(
                    Arc::downgrade(consumer),
                    self.clone(),
                    key,
                    committed,
                    step,
                ));
                false
            }
        }
    }
}

/// Moves the position of `key` to `step` offsets before `committed`, not
/// before the partition's log start (a position out of range could make
/// librdkafka jump to the end). Retries until the consumer goes.
async fn seek_back(
    consumer: Weak<StreamConsumer<Context>>,
    resuming: Resuming,
    key: (Arc<str>, i32),
    committed: i64,
    step: i64,
) {
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let Some(c) = consumer.upgrade() else { return };
        let (r, k) = (resuming.clone(), key.clone());
        let done = tokio::task::spawn_blocking(move || {
            let (topic, partition) = (&k.0, k.1);
            let (floor, _) = c
                .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                .map_err(|e| e.to_string())?;
            let from = committed.saturating_sub(step).max(floor);
            let prepared = Phase::Back {
                from,
                floor,
                step,
                sought: false,
                covered: false,
            };
            {
                let mut map = r.lock();
                match map.get_mut(&k) {
                    Some(resume) if resume.phase == (Phase::Seeking { step }) => {
                        resume.phase = prepared.clone()
                    }
                    // Given up, or a newer check: nothing to do.
                    _ => return Ok(()),
                }
            }
            if let Err(e) = c.seek(topic, partition, Offset::Offset(from), REQUEST_TIMEOUT) {
                if let Some(resume) = r.lock().get_mut(&k) {
                    resume.phase = Phase::Seeking { step };
                }
                return Err(e.to_string());
            }
            if let Some(resume) = r.lock().get_mut(&k)
                && let Phase::Back { sought, .. } = &mut resume.phase
            {
                *sought = true;
            }
            tracing::info!(
                "kafka {topic} [{partition}]: the broker did not serve committed offset {committed} first (tansu 0.6 skips a batch that starts before the fetch offset): reading again from offset {from}, dropping what comes before {committed}"
            );
            Ok::<(), String>(())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match done {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(
                    "kafka {} [{}]: cannot read again from further back (retrying): {e}",
                    key.0,
                    key.1
                );
                backoff.wait().await;
            }
        }
    }
}

/// How long a partition resumed at a committed offset may stay silent
/// before [`check_silent`] asks where its log ends.
const SILENCE: Duration = Duration::from_millis(500);

/// After [`SILENCE`], asks where the log of each partition of `checked`
/// that delivered nothing yet ends. A Kafka broker says the committed
/// offset itself (the partition is caught up); tansu 0.6 says one past the
/// start of its last batch, and sends nothing for a fetch inside that
/// batch. So when the end is not after the committed offset, the
/// partition is read again from just before the end (further back each
/// time it stays silent, not before the log start), dropping what comes
/// before the committed offset: on Kafka that is one record read again.
pub(super) async fn check_silent(
    consumer: Weak<StreamConsumer<Context>>,
    resuming: Resuming,
    checked: Vec<(Arc<str>, i32, i64)>,
) {
    tokio::time::sleep(SILENCE).await;
    for (topic, partition, committed) in checked {
        let key = (topic, partition);
        // The phase this check set last: silent while it stays so.
        let mut ours = Phase::AtCommitted;
        let mut step = FIRST_STEP;
        loop {
            let silent = resuming.lock().get(&key).is_some_and(|r| r.phase == ours);
            if !silent {
                break;
            }
            let Some(c) = consumer.upgrade() else { return };
            let (r, k, first) = (resuming.clone(), key.clone(), ours == Phase::AtCommitted);
            let expected = ours.clone();
            let done = tokio::task::spawn_blocking(move || {
                let (topic, partition) = (&k.0, k.1);
                let (floor, end) = c
                    .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                    .map_err(|e| e.to_string())?;
                if first && end > committed {
                    return Ok(None);
                }
                let from = if first {
                    end.saturating_sub(1)
                } else {
                    committed.saturating_sub(step)
                }
                .max(floor);
                if !first && from <= floor && expected_from(&expected) <= floor {
                    return Ok(None);
                }
                let prepared = Phase::Back {
                    from,
                    floor,
                    step,
                    sought: true,
                    covered: false,
                };
                {
                    let mut map = r.lock();
                    match map.get_mut(&k) {
                        Some(resume) if resume.phase == expected => {
                            resume.phase = Phase::Back {
                                from,
                                floor,
                                step,
                                sought: false,
                                covered: false,
                            }
                        }
                        _ => return Ok(None),
                    }
                }
                if let Err(e) = c.seek(topic, partition, Offset::Offset(from), REQUEST_TIMEOUT) {
                    if let Some(resume) = r.lock().get_mut(&k) {
                        resume.phase = expected;
                    }
                    return Err(e.to_string());
                }
                if let Some(resume) = r.lock().get_mut(&k)
                    && let Phase::Back { sought, .. } = &mut resume.phase
                {
                    *sought = true;
                }
                tracing::info!(
                    "kafka {topic} [{partition}]: nothing came from committed offset {committed} and the broker says the log ends at {end} (tansu 0.6 counts the end from the start of the last batch, and skips a batch that starts before the fetch offset): reading again from offset {from}, dropping what comes before {committed}"
                );
                Ok::<_, String>(Some(prepared))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match done {
                Ok(Some(phase)) => {
                    ours = phase;
                    if !first {
                        step = step.saturating_mul(4);
                    }
                }
                Ok(None) => break,
                Err(e) => tracing::debug!("kafka: cannot check a silent partition: {e}"),
            }
            tokio::time::sleep(SILENCE).await;
        }
    }
}

/// Where a phase reads from (`i64::MAX` before any seek).
fn expected_from(phase: &Phase) -> i64 {
    match phase {
        Phase::Back { from, .. } => *from,
        _ => i64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back(from: i64, floor: i64, step: i64) -> Phase {
        Phase::Back {
            from,
            floor,
            step,
            sought: true,
            covered: false,
        }
    }

    #[test]
    fn a_partition_served_from_the_committed_offset_is_delivered_at_once() {
        let mut r = Resume::new(120);
        assert_eq!(r.on_message(120), Verdict::Deliver);
        // Moved back by the broker (offset reset): delivered, never skipped.
        let mut r = Resume::new(120);
        assert_eq!(r.on_message(3), Verdict::Deliver);
    }

    #[test]
    fn a_batch_skipped_by_the_broker_is_read_again_from_further_back() {
        // tansu 0.6: committed 120 inside the batch 100..=149; the fetch at
        // 120 starts at the next batch, 150.
        let mut r = Resume::new(120);
        assert_eq!(r.on_message(150), Verdict::SeekBack { step: FIRST_STEP });
        assert_eq!(r.phase, Phase::Seeking { step: FIRST_STEP });
        // Fetched before the seek: dropped, read again.
        assert_eq!(r.on_message(151), Verdict::Drop);
        r.phase = Phase::Back {
            from: 0,
            floor: 0,
            step: FIRST_STEP,
            sought: false,
            covered: false,
        };
        // Still from before the seek took effect.
        assert_eq!(r.on_message(152), Verdict::Drop);
        r.phase = back(0, 0, FIRST_STEP);
        // 0..=119 were committed: dropped; 120 on delivered.
        for o in [0, 50, 100, 119] {
            assert_eq!(r.on_message(o), Verdict::Drop, "{o}");
        }
        assert_eq!(r.on_message(120), Verdict::Deliver);
    }

    #[test]
    fn the_look_back_grows_until_it_finds_the_batch_or_the_log_start() {
        let mut r = Resume::new(50_000);
        assert_eq!(
            r.on_message(52_000),
            Verdict::SeekBack { step: 4000 },
            "twice the gap"
        );
        r.phase = back(46_000, 0, 4000);
        // Nothing before the committed offset came: not far enough.
        assert_eq!(r.on_message(52_000), Verdict::SeekBack { step: 16_000 });
        r.phase = back(34_000, 30_000, 16_000);
        assert_eq!(r.on_message(52_000), Verdict::SeekBack { step: 64_000 });
        // At the log start and still nothing before 50 000: a real gap.
        r.phase = back(30_000, 30_000, 64_000);
        assert_eq!(r.on_message(52_000), Verdict::Deliver);
    }

    #[test]
    fn a_gap_after_the_committed_offset_is_real_once_earlier_records_came() {
        let mut r = Resume::new(120);
        assert_eq!(r.on_message(121), Verdict::SeekBack { step: FIRST_STEP });
        r.phase = back(0, 0, FIRST_STEP);
        assert_eq!(r.on_message(118), Verdict::Drop);
        // 120 is a transaction marker, say: 121 follows 119.
        assert_eq!(r.on_message(121), Verdict::Deliver);
    }

    #[test]
    fn a_log_that_starts_after_the_committed_offset_is_read_from_its_start() {
        let mut r = Resume::new(120);
        assert_eq!(r.on_message(500), Verdict::SeekBack { step: FIRST_STEP });
        // The log starts at 400 (retention): the seek goes to 400.
        r.phase = back(400, 400, FIRST_STEP);
        assert_eq!(r.on_message(400), Verdict::Deliver);
    }

    #[test]
    fn resuming_only_checks_the_partitions_it_was_told_of() {
        let resuming = Resuming::default();
        let topic: Arc<str> = Arc::from("t");
        resuming.expect(&[(topic.clone(), 0, 10)]);
        assert_eq!(resuming.lock().len(), 1);
        resuming.forget(&[(topic, 0, 10)]);
        assert!(resuming.lock().is_empty());
    }
}
