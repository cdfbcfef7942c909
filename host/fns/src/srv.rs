//! RFC 2782 target selection: the order in which SRV targets are tried.

use rand::Rng;

/// What RFC 2782 ordering needs to know of an SRV target.
pub trait SrvTarget {
    /// Lower is tried first.
    fn priority(&self) -> u16;
    /// Share of the traffic among targets of the same priority.
    fn weight(&self) -> u16;
}

/// Orders `targets` as RFC 2782 says a client tries them: by ascending
/// priority and, within a priority, by a weighted random draw in which a
/// target of weight `w` comes first with probability about `w / sum`;
/// targets of weight 0 keep the "very small chance" the RFC gives them (a
/// draw of exactly 0).
pub fn order_by_rfc2782<T: SrvTarget, R: Rng + ?Sized>(mut targets: Vec<T>, rng: &mut R) -> Vec<T> {
    targets.sort_by_key(SrvTarget::priority);
    let mut ordered = Vec::with_capacity(targets.len());
    while !targets.is_empty() {
        let priority = targets[0].priority();
        let group_len = targets
            .iter()
            .take_while(|target| target.priority() == priority)
            .count();
        let mut group: Vec<T> = targets.drain(..group_len).collect();
        // RFC 2782: weight-0 targets are placed at the start of the list
        // before the running sums are computed.
        group.sort_by_key(|target| target.weight() != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|t| u32::from(t.weight())).sum();
            let draw = rng.random_range(0..=total);
            let mut running = 0u32;
            let chosen = group
                .iter()
                .position(|target| {
                    running += u32::from(target.weight());
                    running >= draw
                })
                .unwrap_or(0);
            ordered.push(group.remove(chosen));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Target(&'static str, u16, u16);

    impl SrvTarget for Target {
        fn priority(&self) -> u16 {
            self.1
        }
        fn weight(&self) -> u16 {
            self.2
        }
    }

    #[test]
    fn lower_priority_always_first() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let ordered = order_by_rfc2782(
                vec![Target("c", 20, 5), Target("a", 10, 0), Target("b", 10, 60)],
                &mut rng,
            );
            assert_eq!(ordered[2].0, "c");
            assert_eq!(ordered.len(), 3);
        }
    }

    #[test]
    fn weights_share_the_first_place() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut heavy_first = 0;
        let rounds = 4000;
        for _ in 0..rounds {
            let ordered = order_by_rfc2782(
                vec![Target("light", 0, 10), Target("heavy", 0, 30)],
                &mut rng,
            );
            if ordered[0].0 == "heavy" {
                heavy_first += 1;
            }
        }
        // Expected 3/4 (plus the 1/41 draw of 0 going to the first target).
        let share = f64::from(heavy_first) / f64::from(rounds);
        assert!((0.68..0.80).contains(&share), "heavy first {share}");
    }

    #[test]
    fn zero_weights_are_tried_too() {
        let mut rng = StdRng::seed_from_u64(1);
        let ordered = order_by_rfc2782(vec![Target("a", 0, 0), Target("b", 0, 0)], &mut rng);
        assert_eq!(ordered.len(), 2);
        assert!(order_by_rfc2782(Vec::<Target>::new(), &mut rng).is_empty());
    }
}
