//! Sliding-window limits measured on tokio's clock.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// At most `limit` units of cost in any window of `window` (real time).
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    window: Duration,
    limit: u64,
    events: VecDeque<(Instant, u64)>,
}

/// The outcome of asking for room in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Admitted; this much room is left in the window.
    Admitted { remaining: u64 },
    /// Refused; room frees up after this long (real time).
    Refused { retry_after: Duration },
}

impl SlidingWindow {
    pub(crate) fn new(limit: u64, window: Duration) -> Self {
        Self {
            window,
            limit,
            events: VecDeque::new(),
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(at, _)) = self.events.front() {
            if now.saturating_duration_since(at) >= self.window {
                self.events.pop_front();
            } else {
                break;
            }
        }
    }

    /// Cost already spent in the window ending now.
    pub(crate) fn used(&mut self, now: Instant) -> u64 {
        self.prune(now);
        self.events.iter().map(|&(_, c)| c).sum()
    }

    /// Room left in the window ending now.
    pub(crate) fn remaining(&mut self, now: Instant) -> u64 {
        self.limit.saturating_sub(self.used(now))
    }

    /// Spends `cost` if it fits; refused requests spend nothing.
    pub(crate) fn try_acquire(&mut self, now: Instant, cost: u64) -> Admission {
        let used = self.used(now);
        if used + cost <= self.limit {
            self.events.push_back((now, cost));
            return Admission::Admitted {
                remaining: self.limit - used - cost,
            };
        }
        // Wait until enough of the oldest spending leaves the window.
        let mut freed = 0;
        for &(at, c) in &self.events {
            freed += c;
            if used - freed + cost <= self.limit {
                return Admission::Refused {
                    retry_after: (at + self.window).saturating_duration_since(now),
                };
            }
        }
        Admission::Refused {
            retry_after: self.window,
        }
    }
}

/// The most events that fell in any window of length `window`, counting an
/// event at the very end of a window as outside it (as [`SlidingWindow`] does).
pub(crate) fn max_in_any_window(times: &[Instant], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while let (Some(&s), Some(&e)) = (sorted.get(start), sorted.get(end)) {
            if e.saturating_duration_since(s) >= window {
                start += 1;
            } else {
                break;
            }
        }
        best = best.max(end + 1 - start);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_says_when_room_frees_up() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(3, Duration::from_secs(10));
        for i in 0..3 {
            assert!(matches!(
                w.try_acquire(t0 + Duration::from_secs(i), 1),
                Admission::Admitted { .. }
            ));
        }
        assert_eq!(
            w.try_acquire(t0 + Duration::from_secs(4), 1),
            Admission::Refused {
                retry_after: Duration::from_secs(6)
            }
        );
        assert!(matches!(
            w.try_acquire(t0 + Duration::from_secs(10), 1),
            Admission::Admitted { remaining: 0 }
        ));
    }

    #[test]
    fn counts_the_busiest_window() {
        let t0 = Instant::now();
        let times: Vec<_> = [0u64, 1, 2, 10, 11, 12, 13]
            .iter()
            .map(|s| t0 + Duration::from_secs(*s))
            .collect();
        assert_eq!(max_in_any_window(&times, Duration::from_secs(10)), 4);
        assert_eq!(max_in_any_window(&times, Duration::from_secs(12)), 5);
    }
}
