//! A rate budget every request of a source spends, and Salesloft's: the
//! team's cost points, shared with the team's other integrations.

use std::sync::Mutex;

use kendo_bridge_core::sources::budget::ShareBudget;

use crate::plugin::types::HttpRequest;
use crate::store::Millis;

/// A rate budget that every request of a source spends: asked for a slot
/// before each request (reserved at once, so concurrent callers queue) and
/// told each answer's headers, which may say how much is left.
pub trait RateBudget: Send + Sync {
    /// The time `request` may leave, at or after `now`, reserved for it.
    fn reserve(&self, request: &HttpRequest, now: Millis) -> Millis;
    /// An answer arrived at `now` with these headers.
    fn observe(&self, now: Millis, headers: &reqwest::header::HeaderMap);
}

/// The bridge's share of the Salesloft team's cost points: every request
/// spends one (the plugin never asks for a page past 100, which would cost
/// more; the answer's `x-ratelimit-endpoint-cost` corrects it if it did).
pub struct TeamBudget(Mutex<ShareBudget>);

impl TeamBudget {
    pub fn new(budget: ShareBudget) -> TeamBudget {
        TeamBudget(Mutex::new(budget))
    }
}

impl RateBudget for TeamBudget {
    fn reserve(&self, _request: &HttpRequest, now: Millis) -> Millis {
        let mut budget = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = budget.next_slot(now, 1);
        budget.record(slot, 1);
        slot
    }

    fn observe(&self, now: Millis, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        // https://developers.salesloft.com/docs/platform/api-basics/rate-limits/
        let remaining = number("x-ratelimit-remaining-minute");
        let cost = number("x-ratelimit-endpoint-cost");
        let mut budget = self.0.lock().unwrap_or_else(|p| p.into_inner());
        budget.observe(now, remaining, cost);
    }
}
