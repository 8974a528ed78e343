//! Wall-clock time on tokio's clock.
//!
//! Epoch milliseconds are what the store and the plugin want; tokio's
//! `Instant` is what sleeps use. Anchoring one to the other once means a
//! test that pauses tokio's clock moves the bridge's idea of "now" too, so
//! pacing and retry tests run in virtual time without a single real sleep.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::store::Millis;

/// The bridge's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch_ms_at_anchor: Millis,
    anchor: Instant,
    /// Milliseconds a test moved the clock on by (see [`Clock::shifted`]).
    shift: Option<&'static AtomicI64>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis);
        Clock::starting_at(wall)
    }

    /// A clock that reads `epoch_ms` now and then advances with tokio's time.
    pub fn starting_at(epoch_ms: Millis) -> Clock {
        Clock {
            epoch_ms_at_anchor: epoch_ms,
            anchor: Instant::now(),
            shift: None,
        }
    }

    /// This clock, moved on by what `shift` holds (milliseconds) whenever
    /// it is read: a test (the conformance suite) moves the bridge's "now"
    /// as it moves the Spin app's, without pausing tokio's clock while real
    /// sockets are open.
    pub fn shifted(self, shift: &'static AtomicI64) -> Clock {
        Clock {
            shift: Some(shift),
            ..self
        }
    }

    fn shift_ms(&self) -> Millis {
        self.shift.map_or(0, |s| s.load(Ordering::SeqCst))
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> Millis {
        self.epoch_ms_at_anchor + self.anchor.elapsed().as_millis() as Millis + self.shift_ms()
    }

    /// The tokio instant at which the clock will read `epoch_ms`.
    pub fn instant_at(&self, epoch_ms: Millis) -> Instant {
        let offset = epoch_ms
            .saturating_sub(self.epoch_ms_at_anchor + self.shift_ms())
            .max(0) as u64;
        self.anchor + Duration::from_millis(offset)
    }

    /// Sleeps until the clock reads `epoch_ms`.
    pub async fn sleep_until(&self, epoch_ms: Millis) {
        tokio::time::sleep_until(self.instant_at(epoch_ms)).await;
    }
}
