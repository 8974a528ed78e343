//! Simulated time: one clock per simulator, scaled against tokio's clock.
//!
//! Everything that waits or counts a window uses [`tokio::time::Instant`], so
//! a test that pauses tokio time (`tokio::time::pause`) drives the simulators
//! deterministically. Wall-clock timestamps (a record's `updated_at`) come
//! from an anchor plus scaled elapsed tokio time.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::SimError;

/// A clock that runs `scale` times faster than real time.
#[derive(Clone, Debug)]
pub struct SimClock {
    scale: f64,
    anchor: Instant,
    anchor_wall: OffsetDateTime,
}

impl SimClock {
    /// A clock anchored at the current wall-clock time.
    pub fn new(scale: f64) -> Result<Self, SimError> {
        Self::anchored(scale, OffsetDateTime::now_utc())
    }

    /// A clock whose simulated "now" starts at `wall`.
    pub fn anchored(scale: f64, wall: OffsetDateTime) -> Result<Self, SimError> {
        // Below 1e-6 a one-minute window lasts two years of real time, which is
        // a mistake, not a simulation.
        if !scale.is_finite() || scale < 1e-6 {
            return Err(SimError::InvalidOption(format!(
                "time_scale must be a finite number of at least 1e-6, got {scale}"
            )));
        }
        Ok(Self {
            scale,
            anchor: Instant::now(),
            anchor_wall: wall,
        })
    }

    /// How many simulated seconds pass per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration of a simulated one (`60 s` at scale 30 is `2 s`).
    pub fn real(&self, simulated: Duration) -> Duration {
        Duration::try_from_secs_f64(simulated.as_secs_f64() / self.scale).unwrap_or(Duration::MAX)
    }

    /// The simulated duration of a real one.
    pub fn simulated(&self, real: Duration) -> Duration {
        Duration::try_from_secs_f64(real.as_secs_f64() * self.scale).unwrap_or(Duration::MAX)
    }

    /// The simulated wall-clock time now.
    pub fn now_utc(&self) -> OffsetDateTime {
        let elapsed = self.simulated(self.anchor.elapsed());
        time::Duration::try_from(elapsed)
            .ok()
            .and_then(|d| self.anchor_wall.checked_add(d))
            .unwrap_or(self.anchor_wall)
    }
}

/// `Retry-After` in whole real seconds: rounded up and never 0, because the
/// bridge reads integer seconds and `0` would invite an immediate retry.
pub(crate) fn retry_after_secs(real: Duration) -> u64 {
    let secs = real.as_secs() + u64::from(real.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn scale_thirty_turns_a_minute_into_two_seconds() {
        let clock = SimClock::new(30.0).unwrap();
        assert_eq!(clock.real(Duration::from_secs(60)), Duration::from_secs(2));
    }

    #[test]
    fn a_zero_or_nan_scale_is_refused() {
        assert!(SimClock::new(0.0).is_err());
        assert!(SimClock::new(f64::NAN).is_err());
        assert!(SimClock::new(-1.0).is_err());
    }
}
