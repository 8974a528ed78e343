//! Pacing and back-off for Kendo sends.
//!
//! Kendo allows 30 requests per minute per key and answers 429 past that.
//! The bridge never wants to see that 429, so each key gets a [`Pacer`]
//! that spaces requests evenly (one every `window / limit`, plus a small
//! safety margin) and also checks a sliding window over the persisted send
//! history, so a restart cannot burst through the limit. Even spacing rather
//! than bursts matters: requests can arrive at Kendo in a different order or
//! with different delays than they left, and a burst of 30 followed by one
//! more exactly a window later is one reordering away from a 429.
//!
//! Nothing here reads a clock or sleeps: callers pass `now` and sleep until
//! the returned slot, so tests drive time exactly.

use std::collections::VecDeque;

use crate::Millis;

/// Per-key request pacing over a sliding window.
#[derive(Debug, Clone)]
pub struct Pacer {
    limit: u32,
    window_ms: Millis,
    spacing_ms: Millis,
    margin_ms: Millis,
    /// Request times inside the last window, oldest first.
    history: VecDeque<Millis>,
    /// The even-spacing schedule: the next request's slot.
    next_even: Millis,
    /// No request before this time (set by a 429's Retry-After).
    blocked_until: Millis,
}

impl Pacer {
    /// `limit` requests per `window_ms`, with `margin` (0.01 = 1%) added to
    /// both the spacing and the window. `history` is the persisted send
    /// times of the last window, so pacing holds across restarts.
    pub fn new(limit: u32, window_ms: Millis, margin: f64, history: Vec<Millis>) -> Pacer {
        let limit = limit.max(1);
        let window_ms = window_ms.max(1);
        let margin = margin.clamp(0.0, 1.0);
        let spacing_ms = ((window_ms as f64 / f64::from(limit)) * (1.0 + margin)).ceil() as Millis;
        let margin_ms = (window_ms as f64 * margin).ceil() as Millis;
        let mut history: Vec<Millis> = history;
        history.sort_unstable();
        let next_even = history
            .last()
            .map_or(Millis::MIN, |last| last.saturating_add(spacing_ms));
        Pacer {
            limit,
            window_ms,
            spacing_ms,
            margin_ms,
            history: history.into(),
            next_even,
            blocked_until: Millis::MIN,
        }
    }

    /// The time between two requests when the queue is full.
    pub fn spacing_ms(&self) -> Millis {
        self.spacing_ms
    }

    /// The earliest time at or after `now` when the next request may leave.
    pub fn next_slot(&self, now: Millis) -> Millis {
        let mut slot = now.max(self.blocked_until).max(self.next_even);
        let limit = self.limit as usize;
        if self.history.len() >= limit {
            // The request `limit` places back must have left the window.
            if let Some(oldest) = self.history.get(self.history.len() - limit) {
                slot = slot.max(
                    oldest
                        .saturating_add(self.window_ms)
                        .saturating_add(self.margin_ms),
                );
            }
        }
        slot
    }

    /// Continues the even-spacing schedule from `slot`, the schedule slot
    /// of the last request (see [`Pacer::slot_of`]): the history's request
    /// times may be a little later than their slots.
    pub fn after_slot(mut self, slot: Option<Millis>) -> Pacer {
        if let Some(slot) = slot {
            self.next_even = slot.saturating_add(self.spacing_ms);
        }
        self
    }

    /// The schedule slot a request leaving at `at` takes.
    ///
    /// A request that left a little after its slot (timers fire late, the
    /// in-flight commit takes a moment) does not push the schedule back:
    /// otherwise every send's lateness would add up over a backlog and drain
    /// it below the limit. The window check still counts the real times, so
    /// the margin covers this slack.
    pub fn slot_of(&self, at: Millis) -> Millis {
        let late = at.saturating_sub(self.next_even);
        if (0..=self.margin_ms).contains(&late) {
            self.next_even
        } else {
            at
        }
    }

    /// Records a request that left at `at`.
    pub fn record(&mut self, at: Millis) {
        let from = self.slot_of(at);
        self.next_even = from.saturating_add(self.spacing_ms);
        self.history.push_back(at);
        let horizon = at.saturating_sub(self.window_ms.saturating_add(self.margin_ms));
        while self.history.front().is_some_and(|&t| t < horizon) {
            self.history.pop_front();
        }
        // Only the last `limit` entries can ever constrain the next slot.
        while self.history.len() > self.limit as usize {
            self.history.pop_front();
        }
    }

    /// Holds every request until `until` (after a 429 with Retry-After).
    pub fn block_until(&mut self, until: Millis) {
        self.blocked_until = self.blocked_until.max(until);
    }
}

/// Exponential back-off with full jitter, bounded in attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first retry waits up to this long.
    pub base_ms: Millis,
    /// No single wait exceeds this.
    pub cap_ms: Millis,
    /// Attempts (the first send included) before a call is dead-lettered.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// Kendo sends' schedule.
    fn default() -> Self {
        crate::policy::Policy::DEFAULT.retry.kendo_send
    }
}

impl Backoff {
    /// The wait before the next attempt, after `attempts` attempts failed;
    /// `None` when the call should be dead-lettered. `unit` is a uniform
    /// random number in [0, 1) (full jitter: the wait is anywhere between
    /// zero and the exponential ceiling, which spreads retries of many calls
    /// that failed together).
    pub fn delay(&self, attempts: u32, unit: f64) -> Option<Millis> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(30);
        let ceiling = self
            .base_ms
            .saturating_mul(1_i64 << exp)
            .min(self.cap_ms)
            .max(1);
        let unit = unit.clamp(0.0, 1.0);
        // Never zero: a retry in the same millisecond is a hot loop.
        Some(((ceiling as f64 * unit) as Millis).max(1))
    }

    /// The wait before the next attempt after `attempts` failed attempts,
    /// the last of which may have said when to come back (`Retry-After`,
    /// see [`retry_after_ms`]); `None` when the attempts are spent. A
    /// server's own `Retry-After` wins over the back-off: it knows its window.
    pub fn wait(&self, attempts: u32, retry_after_ms: Option<Millis>, unit: f64) -> Option<Millis> {
        let backoff = self.delay(attempts, unit)?;
        Some(retry_after_ms.map_or(backoff, |ms| ms.max(1)))
    }

    /// The ceiling of the wait after `attempts` failures (for documentation
    /// and ETAs).
    pub fn ceiling(&self, attempts: u32) -> Millis {
        let exp = attempts.saturating_sub(1).min(30);
        self.base_ms.saturating_mul(1_i64 << exp).min(self.cap_ms)
    }
}

/// A `Retry-After` value (RFC 9110 section 10.2.3: delay-seconds or an
/// HTTP-date) as the wait from `now`, never negative; `None` when unreadable.
pub fn retry_after_ms(value: &str, now: Millis) -> Option<Millis> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| (seconds * 1000.0).ceil().min(Millis::MAX as f64) as Millis);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| Millis::try_from(d.as_millis()).ok())?;
    Some(at_ms.saturating_sub(now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after_ms("7", 0), Some(7_000));
        assert_eq!(retry_after_ms(" 1.5 ", 0), Some(1_500));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        let now = 784_111_777_000 - 30_000;
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now + 60_000),
            Some(0),
            "a date in the past means now"
        );
        assert_eq!(retry_after_ms("soon", 0), None);
        assert_eq!(retry_after_ms("-3", 0), None);
    }

    #[test]
    fn a_servers_retry_after_wins_over_the_back_off_until_attempts_run_out() {
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 60_000,
            max_attempts: 3,
        };
        assert_eq!(backoff.wait(1, Some(9_000), 0.5), Some(9_000));
        assert_eq!(backoff.wait(2, None, 0.5), Some(1_000));
        assert_eq!(backoff.wait(3, Some(9_000), 0.5), None);
    }

    /// Sends as fast as the pacer allows and returns the send times.
    fn drain(pacer: &mut Pacer, n: usize, start: Millis) -> Vec<Millis> {
        let mut now = start;
        let mut times = Vec::new();
        for _ in 0..n {
            now = pacer.next_slot(now);
            pacer.record(now);
            times.push(now);
        }
        times
    }

    fn max_in_any_window(times: &[Millis], window: Millis) -> usize {
        times
            .iter()
            .map(|&t| times.iter().filter(|&&u| u >= t && u < t + window).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit() {
        let mut pacer = Pacer::new(30, 60_000, 0.01, vec![]);
        let times = drain(&mut pacer, 200, 0);
        assert!(max_in_any_window(&times, 60_000) <= 30);
    }

    #[test]
    fn a_backlog_drains_within_two_percent_of_the_theoretical_time() {
        let mut pacer = Pacer::new(30, 60_000, 0.01, vec![]);
        let n = 300;
        let times = drain(&mut pacer, n, 0);
        // The n-th request leaves after n-1 spacings; the theoretical drain
        // of n requests at 30 per minute is n/30 minutes.
        let elapsed = times[n - 1] - times[0] + pacer.spacing_ms();
        let theoretical = (n as f64 / 30.0) * 60_000.0;
        let ratio = elapsed as f64 / theoretical;
        assert!((1.0..=1.02).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn sends_that_leave_slightly_late_do_not_slow_the_drain() {
        let mut pacer = Pacer::new(30, 2_000, 0.01, vec![]);
        let (n, late) = (300, 3);
        let mut times = Vec::new();
        for _ in 0..n {
            // Each request leaves 3 ms after its slot, as a timer and a
            // commit make it.
            let at = pacer.next_slot(times.last().copied().unwrap_or(0)) + late;
            pacer.record(at);
            times.push(at);
        }
        let elapsed = times[n - 1] - times[0];
        assert!(
            elapsed <= (n as Millis - 1) * pacer.spacing_ms() + late,
            "{elapsed} ms"
        );
        assert!(max_in_any_window(&times, 2_000) <= 30);
    }

    #[test]
    fn a_send_far_behind_its_slot_restarts_the_schedule_from_itself() {
        let mut pacer = Pacer::new(30, 60_000, 0.01, vec![]);
        pacer.record(0);
        // Idle, then a send long after its slot: the next one is a full
        // spacing later, not at once.
        pacer.record(50_000);
        assert_eq!(pacer.next_slot(50_001), 50_000 + pacer.spacing_ms());
    }

    #[test]
    fn history_from_before_a_restart_still_limits_the_rate() {
        // 30 requests in the last 10 seconds before the restart.
        let history: Vec<Millis> = (0..30).map(|i| 50_000 + i * 333).collect();
        let pacer = Pacer::new(30, 60_000, 0.01, history);
        let slot = pacer.next_slot(60_000);
        assert!(
            slot >= 50_000 + 60_000,
            "slot {slot} would be the 31st in a minute"
        );
    }

    #[test]
    fn a_retry_after_blocks_every_request_until_it_passes() {
        let mut pacer = Pacer::new(30, 60_000, 0.01, vec![]);
        pacer.block_until(45_000);
        assert_eq!(pacer.next_slot(1_000), 45_000);
        assert_eq!(pacer.next_slot(50_000), 50_000);
    }

    #[test]
    fn an_idle_key_sends_at_once() {
        let pacer = Pacer::new(30, 60_000, 0.01, vec![0]);
        assert_eq!(pacer.next_slot(120_000), 120_000);
    }

    #[test]
    fn backoff_grows_to_its_cap_and_then_gives_up() {
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 8_000,
            max_attempts: 6,
        };
        assert_eq!(backoff.ceiling(1), 1_000);
        assert_eq!(backoff.ceiling(2), 2_000);
        assert_eq!(backoff.ceiling(5), 8_000);
        assert_eq!(backoff.delay(1, 0.999_999), Some(999));
        assert_eq!(backoff.delay(5, 0.5), Some(4_000));
        assert_eq!(backoff.delay(6, 0.5), None);
    }

    #[test]
    fn full_jitter_never_waits_zero() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(1, 0.0), Some(1));
    }
}
