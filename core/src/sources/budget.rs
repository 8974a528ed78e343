//! A share of a rate budget that a whole team spends together.
//!
//! Salesloft gives a team 600 cost points per minute, spent by every
//! integration of the team (https://developers.salesloft.com/docs/platform/api-basics/rate-limits/),
//! and says what is left after each request in `x-ratelimit-remaining-minute`
//! (and what the request cost in `x-ratelimit-endpoint-cost`). The bridge is
//! one integration among several, so it spends at most its configured share,
//! spread evenly over the window instead of in bursts, and slows down
//! further when the team's remaining points show that others are busy.
//!
//! Nothing here reads a clock or sleeps: callers pass `now` and sleep until
//! the returned slot, so tests drive time exactly.

use std::collections::VecDeque;

use crate::Millis;

/// Added to the spacing and to the window: a request reserved for a slot
/// may leave a little late, and must not land in the next window's count.
const MARGIN: f64 = 0.05;

/// Salesloft's cost points per minute for a whole team (its rate-limits
/// page, above): the default of `salesloft.rate_limit_points`.
pub const SALESLOFT_TEAM_POINTS: u64 = crate::policy::Policy::DEFAULT.salesloft.team_points;

/// The points left to the team's other integrations: when fewer than this
/// remain, the bridge waits for the next window.
pub fn reserve(team_limit: u64) -> u64 {
    (team_limit / 20).max(1)
}

/// Whether a team with `remaining` of its `team_limit` points is to be
/// left alone until its window turns (a driver that cannot wait stops
/// reading).
pub fn leave_to_others(team_limit: u64, remaining: u64) -> bool {
    remaining < reserve(team_limit)
}

/// The bridge's share of a team-wide cost budget.
#[derive(Debug, Clone)]
pub struct ShareBudget {
    /// The team's points per window.
    team_limit: u64,
    /// The fraction of them the bridge may spend (0 < share <= 1).
    share: f64,
    window_ms: Millis,
    /// Time per cost point at the current rate.
    spacing_ms: f64,
    /// The even-spacing schedule: the next request's slot.
    next_ms: Millis,
    /// Nothing leaves before this (the team is almost out of points).
    held_until: Millis,
    /// The bridge's own spending inside the last window: (when, cost).
    spent: VecDeque<(Millis, u64)>,
}

impl ShareBudget {
    /// `share` of `team_limit` points per `window_ms`.
    pub fn new(team_limit: u64, share: f64, window_ms: Millis) -> ShareBudget {
        let share = if share.is_finite() {
            share.clamp(0.001, 1.0)
        } else {
            0.5
        };
        let mut budget = ShareBudget {
            team_limit: team_limit.max(1),
            share,
            window_ms: window_ms.max(1),
            spacing_ms: 0.0,
            next_ms: Millis::MIN,
            held_until: Millis::MIN,
            spent: VecDeque::new(),
        };
        budget.spacing_ms = budget.spacing_for(budget.team_limit);
        budget
    }

    /// The most points the bridge spends in one window.
    pub fn allowance(&self) -> u64 {
        ((self.team_limit as f64 * self.share).floor() as u64).max(1)
    }

    /// When fewer points than this remain for the team, the bridge waits a
    /// whole window: the last points are left to the other integrations.
    pub fn reserve(&self) -> u64 {
        reserve(self.team_limit)
    }

    /// Time per point when the team has `remaining` points: the share of
    /// what is left, spread over a window.
    fn spacing_for(&self, remaining: u64) -> f64 {
        let rate = (remaining.min(self.team_limit) as f64 * self.share).max(1.0);
        self.window_ms as f64 * (1.0 + MARGIN) / rate
    }

    /// The earliest time at or after `now` when a request costing `cost`
    /// may leave.
    pub fn next_slot(&self, now: Millis, cost: u64) -> Millis {
        let mut slot = now.max(self.next_ms).max(self.held_until);
        // Never more than the allowance inside any window.
        let allowance = self.allowance();
        let mut total: u64 = self.spent.iter().map(|(_, c)| c).sum::<u64>() + cost;
        for (at, c) in &self.spent {
            if total <= allowance {
                break;
            }
            slot = slot.max(at.saturating_add(self.window_with_margin()));
            total -= c;
        }
        slot
    }

    fn window_with_margin(&self) -> Millis {
        (self.window_ms as f64 * (1.0 + MARGIN)).ceil() as Millis
    }

    /// Records a request of `cost` that left at `at`.
    pub fn record(&mut self, at: Millis, cost: u64) {
        // Callers record the slot they reserved, so `at` is never before
        // the schedule; a request that left late moves it along.
        let from = at.max(self.next_ms);
        self.next_ms = from.saturating_add((self.spacing_ms * cost as f64).ceil() as Millis);
        self.spent.push_back((at, cost));
        let horizon = at.saturating_sub(self.window_with_margin());
        while self.spent.front().is_some_and(|&(t, _)| t <= horizon) {
            self.spent.pop_front();
        }
    }

    /// What the answer to the last request said: the team's `remaining`
    /// points and the request's real `cost` (deep pages cost more than the
    /// one point recorded).
    pub fn observe(&mut self, now: Millis, remaining: Option<u64>, cost: Option<u64>) {
        if let Some(cost) = cost
            && let Some(last) = self.spent.back_mut()
            && cost > last.1
        {
            let extra = cost - last.1;
            last.1 = cost;
            self.next_ms = self
                .next_ms
                .saturating_add((self.spacing_ms * extra as f64).ceil() as Millis);
        }
        let Some(remaining) = remaining else {
            return;
        };
        self.spacing_ms = self.spacing_for(remaining);
        if remaining < self.reserve() {
            self.held_until = self.held_until.max(now.saturating_add(self.window_ms));
        }
        // A slower rate applies from now on, not only after the next slot.
        let slower = now.saturating_add(self.spacing_ms.ceil() as Millis);
        if remaining < self.team_limit / 2 {
            self.next_ms = self.next_ms.max(slower);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Millis = 60_000;

    /// Sends `n` requests of cost 1 as soon as allowed from `start`, the team
    /// reporting `remaining` after each; returns their times.
    fn drain(budget: &mut ShareBudget, start: Millis, n: usize, remaining: u64) -> Vec<Millis> {
        let mut now = start;
        let mut times = Vec::new();
        for _ in 0..n {
            now = budget.next_slot(now, 1);
            budget.record(now, 1);
            budget.observe(now, Some(remaining), Some(1));
            times.push(now);
        }
        times
    }

    fn most_in_any_window(times: &[Millis], window: Millis) -> usize {
        times
            .iter()
            .map(|&t| times.iter().filter(|&&u| u >= t && u < t + window).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn half_of_600_points_is_300_per_minute_spread_evenly() {
        let mut budget = ShareBudget::new(600, 0.5, MINUTE);
        assert_eq!(budget.allowance(), 300);
        let times = drain(&mut budget, 0, 900, 600);
        assert!(most_in_any_window(&times, MINUTE) <= 300);
        // Spread: one every 200 ms (and a margin), never in bursts, and
        // close to the allowance over a long drain.
        assert!(
            times
                .windows(2)
                .all(|w| (200..=220).contains(&(w[1] - w[0]))),
            "bursts"
        );
        assert!(most_in_any_window(&times, MINUTE) >= 280);
    }

    #[test]
    fn requests_recorded_in_a_burst_never_exceed_the_allowance_in_a_window() {
        let mut budget = ShareBudget::new(600, 0.5, MINUTE);
        // A caller that did not wait for its slots.
        for i in 0..300 {
            budget.record(i, 1);
        }
        let slot = budget.next_slot(300, 1);
        assert!(
            slot >= MINUTE,
            "{slot}: the 301st point waits for the window"
        );
    }

    #[test]
    fn fewer_remaining_points_slow_the_bridge_to_its_share_of_them() {
        let mut budget = ShareBudget::new(600, 0.5, MINUTE);
        let times = drain(&mut budget, 0, 20, 100);
        // The share of 100 remaining points: 50 per minute, 1.2 s apart.
        assert!(times.windows(2).all(|w| w[1] - w[0] >= 1_200), "{times:?}");
    }

    #[test]
    fn a_team_almost_out_of_points_holds_the_bridge_for_a_window() {
        let mut budget = ShareBudget::new(600, 0.5, MINUTE);
        let first = budget.next_slot(1_000, 1);
        budget.record(first, 1);
        budget.observe(first, Some(10), Some(1));
        assert!(budget.next_slot(first, 1) >= first + MINUTE);
    }

    #[test]
    fn a_costly_page_pushes_the_next_request_back_by_its_cost() {
        let mut budget = ShareBudget::new(600, 0.5, MINUTE);
        budget.record(0, 1);
        budget.observe(0, None, Some(3));
        assert_eq!(budget.next_slot(0, 1), 630);
    }

    #[test]
    fn an_idle_bridge_sends_at_once() {
        let mut budget = ShareBudget::new(600, 0.5, MINUTE);
        budget.record(0, 1);
        assert_eq!(budget.next_slot(90_000, 1), 90_000);
    }

    #[test]
    fn a_share_out_of_range_is_clamped() {
        assert_eq!(ShareBudget::new(600, 7.0, MINUTE).allowance(), 600);
        assert_eq!(ShareBudget::new(600, f64::NAN, MINUTE).allowance(), 300);
        assert_eq!(ShareBudget::new(600, 0.0, MINUTE).allowance(), 1);
    }
}
