//! The outgoing packet ids: which are taken and what each waits for, and
//! the in-flight window for QoS 1/2 publishes.
//!
//! Acknowledgements come from the broker, so nothing here trusts them: one
//! for an id we did not use, or in the wrong state (a PUBCOMP before the
//! PUBREC, a PUBACK for a subscription), is ignored.
//!
//! Everything is forgotten on a disconnect ([`Inflight::clear`]): we connect
//! with a clean session for publishing, so the broker forgets too, and the
//! sink publishes again whatever was not confirmed.

/// What one outgoing packet id waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaiting {
    Nothing,
    /// QoS 1 publish.
    PubAck,
    /// QoS 2 publish, first half.
    PubRec,
    /// QoS 2 publish, released (PUBREL sent).
    PubComp,
    /// SUBSCRIBE.
    SubAck,
}

/// What a PUBREC means for its publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PubRecOutcome {
    /// Not a QoS 2 publish of ours waiting for it: ignore.
    Unknown,
    /// The broker took it: send PUBREL, wait for PUBCOMP.
    Release,
    /// The broker refused it (MQTT 5 reason code): done with it.
    Refused,
}

/// Ids number from 1: 0 is not a valid packet id.
const FIRST_PKID: u16 = 1;

pub(super) struct Inflight {
    /// Indexed by packet id; every u16 has a slot, so indexing with one
    /// cannot fail.
    ids: Box<[Awaiting]>,
    /// Where the search for a free id starts: ids are used round-robin, so a
    /// late acknowledgement for an old id is unlikely to meet a new publish.
    next: u16,
    /// Publishes (QoS 1/2) in flight.
    publishes: usize,
    /// Publishes allowed in flight: ours, lowered by the broker's MQTT 5
    /// receive maximum.
    limit: usize,
    configured_limit: usize,
}

impl Inflight {
    /// A window of `limit` publishes (at least 1).
    pub fn new(limit: u16) -> Inflight {
        let limit = usize::from(limit.max(1));
        Inflight {
            ids: vec![Awaiting::Nothing; usize::from(u16::MAX) + 1].into_boxed_slice(),
            next: FIRST_PKID,
            publishes: 0,
            limit,
            configured_limit: limit,
        }
    }

    /// After CONNACK: the broker's receive maximum, if it sent one (0 is a
    /// protocol error and ignored).
    pub fn connected(&mut self, receive_max: Option<u16>) {
        self.limit = match receive_max {
            Some(max) if max > 0 => self.configured_limit.min(usize::from(max)),
            _ => self.configured_limit,
        };
    }

    /// Forgets every id (the connection is gone).
    pub fn clear(&mut self) {
        self.ids.fill(Awaiting::Nothing);
        self.publishes = 0;
    }

    /// Another QoS 1/2 publish fits in the window.
    pub fn has_room(&self) -> bool {
        self.publishes < self.limit
    }

    /// An id for a QoS 1 (`exactly_once` false) or QoS 2 publish; `None`
    /// when the window is full or no id is free.
    pub fn start_publish(&mut self, exactly_once: bool) -> Option<u16> {
        if !self.has_room() {
            return None;
        }
        let state = if exactly_once {
            Awaiting::PubRec
        } else {
            Awaiting::PubAck
        };
        let id = self.take(state)?;
        self.publishes += 1;
        Some(id)
    }

    /// An id for a SUBSCRIBE (outside the publish window); `None` when no
    /// id is free.
    pub fn start_subscribe(&mut self) -> Option<u16> {
        self.take(Awaiting::SubAck)
    }

    /// Gives back a subscription's id that was never sent.
    pub fn cancel_subscribe(&mut self, pkid: u16) {
        self.finish(pkid, Awaiting::SubAck);
    }

    /// PUBACK: true if it ends a QoS 1 publish of ours.
    pub fn puback(&mut self, pkid: u16) -> bool {
        self.finish(pkid, Awaiting::PubAck)
    }

    /// PUBREC, `refused` when its reason code is a failure.
    pub fn pubrec(&mut self, pkid: u16, refused: bool) -> PubRecOutcome {
        if self.state(pkid) != Awaiting::PubRec {
            return PubRecOutcome::Unknown;
        }
        if refused {
            self.finish(pkid, Awaiting::PubRec);
            PubRecOutcome::Refused
        } else {
            self.ids[usize::from(pkid)] = Awaiting::PubComp;
            PubRecOutcome::Release
        }
    }

    /// PUBCOMP: true if it ends a QoS 2 publish of ours.
    pub fn pubcomp(&mut self, pkid: u16) -> bool {
        self.finish(pkid, Awaiting::PubComp)
    }

    /// SUBACK: true if it answers a SUBSCRIBE of ours.
    pub fn suback(&mut self, pkid: u16) -> bool {
        self.finish(pkid, Awaiting::SubAck)
    }

    pub fn state(&self, pkid: u16) -> Awaiting {
        self.ids[usize::from(pkid)]
    }

    /// A free id, marked `state`; at most one pass over the ids, so a full
    /// table gives `None` rather than a search without end.
    fn take(&mut self, state: Awaiting) -> Option<u16> {
        for _ in 0..u16::MAX {
            let id = self.next;
            self.next = if id == u16::MAX { FIRST_PKID } else { id + 1 };
            let slot = &mut self.ids[usize::from(id)];
            if *slot == Awaiting::Nothing {
                *slot = state;
                return Some(id);
            }
        }
        None
    }

    /// Frees `pkid` if it was waiting for `expected`.
    fn finish(&mut self, pkid: u16, expected: Awaiting) -> bool {
        let slot = &mut self.ids[usize::from(pkid)];
        if *slot != expected || expected == Awaiting::Nothing {
            return false;
        }
        *slot = Awaiting::Nothing;
        if expected != Awaiting::SubAck {
            // Never below zero: every publish id counted in when taken.
            self.publishes = self.publishes.saturating_sub(1);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_and_go_round() {
        let mut w = Inflight::new(10);
        assert_eq!(w.start_publish(false), Some(1));
        assert_eq!(w.start_publish(true), Some(2));
        assert_eq!(w.start_subscribe(), Some(3));
        assert!(w.puback(1));
        // Freed ids are not reused at once.
        assert_eq!(w.start_publish(false), Some(4));
    }

    #[test]
    fn ids_wrap_past_65535_and_skip_zero_and_taken_ones() {
        let mut w = Inflight::new(u16::MAX);
        assert_eq!(w.start_publish(false), Some(1));
        w.next = u16::MAX;
        assert_eq!(w.start_publish(false), Some(u16::MAX));
        // 1 is still taken, 0 is never used.
        assert_eq!(w.start_publish(false), Some(2));
    }

    #[test]
    fn the_window_limits_publishes_not_subscriptions() {
        let mut w = Inflight::new(2);
        assert!(w.start_publish(false).is_some());
        assert!(w.start_publish(true).is_some());
        assert!(!w.has_room());
        assert_eq!(w.start_publish(false), None);
        assert!(w.start_subscribe().is_some());
        assert!(w.puback(1));
        assert!(w.has_room());
    }

    #[test]
    fn the_brokers_receive_maximum_lowers_the_window() {
        let mut w = Inflight::new(100);
        w.connected(Some(1));
        assert!(w.start_publish(false).is_some());
        assert!(!w.has_room());
        // 0 is a protocol error: ours applies; and never above ours.
        w.connected(Some(0));
        assert_eq!(w.limit, 100);
        w.connected(Some(1000));
        assert_eq!(w.limit, 100);
        w.connected(None);
        assert_eq!(w.limit, 100);
    }

    #[test]
    fn a_full_id_table_gives_none_instead_of_spinning() {
        // Before: the search for a free id looped for ever once the 65,535
        // ids were taken (a full window plus an unanswered SUBSCRIBE).
        let mut w = Inflight::new(u16::MAX);
        for _ in 0..u16::MAX {
            assert!(w.start_publish(false).is_some());
        }
        assert_eq!(w.start_subscribe(), None);
        assert_eq!(w.start_publish(false), None);
        assert!(w.puback(77));
        assert_eq!(w.start_subscribe(), Some(77));
    }

    #[test]
    fn acknowledgements_for_unknown_ids_are_ignored() {
        let mut w = Inflight::new(10);
        assert!(!w.puback(0));
        assert!(!w.puback(1));
        assert!(!w.pubcomp(u16::MAX));
        assert!(!w.suback(5));
        assert_eq!(w.pubrec(9, false), PubRecOutcome::Unknown);
        assert_eq!(w.publishes, 0);
    }

    #[test]
    fn acknowledgements_of_the_wrong_kind_are_ignored() {
        let mut w = Inflight::new(10);
        let qos1 = w.start_publish(false).unwrap();
        let qos2 = w.start_publish(true).unwrap();
        let sub = w.start_subscribe().unwrap();
        assert_eq!(w.pubrec(qos1, false), PubRecOutcome::Unknown);
        assert!(!w.pubcomp(qos2), "PUBCOMP before PUBREC");
        assert!(!w.puback(sub));
        assert!(!w.suback(qos1));
        assert_eq!(w.publishes, 2);
        // A duplicate acknowledgement does nothing the second time.
        assert!(w.puback(qos1));
        assert!(!w.puback(qos1));
        assert_eq!(w.publishes, 1);
    }

    #[test]
    fn qos2_goes_through_pubrec_then_pubcomp() {
        let mut w = Inflight::new(10);
        let id = w.start_publish(true).unwrap();
        assert_eq!(w.pubrec(id, false), PubRecOutcome::Release);
        assert_eq!(w.state(id), Awaiting::PubComp);
        assert_eq!(w.pubrec(id, false), PubRecOutcome::Unknown);
        assert!(w.pubcomp(id));
        assert_eq!(w.publishes, 0);
        let refused = w.start_publish(true).unwrap();
        assert_eq!(w.pubrec(refused, true), PubRecOutcome::Refused);
        assert_eq!(w.state(refused), Awaiting::Nothing);
        assert_eq!(w.publishes, 0);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut w = Inflight::new(2);
        let id = w.start_publish(false).unwrap();
        w.start_publish(true).unwrap();
        w.start_subscribe().unwrap();
        w.clear();
        assert!(w.has_room());
        assert!(!w.puback(id));
        assert!((0..=u16::MAX).all(|id| w.state(id) == Awaiting::Nothing));
    }

    #[test]
    fn cancelled_subscriptions_free_their_id() {
        let mut w = Inflight::new(2);
        let id = w.start_subscribe().unwrap();
        w.cancel_subscribe(id);
        assert_eq!(w.state(id), Awaiting::Nothing);
        assert!(!w.suback(id));
    }
}
