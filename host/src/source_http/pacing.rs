//! Spacing the requests a source limits separately from the rest, so the
//! limit is kept by waiting for a slot instead of found by 429s.

use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::pacing::Pacer;
use crate::plugin::types::HttpRequest;
use crate::store::Millis;

/// Spaces the requests `applies` picks. Each request reserves its slot
/// before sleeping, so concurrent callers queue.
#[derive(Clone)]
pub struct RequestPacing {
    pacer: Arc<Mutex<Pacer>>,
    applies: fn(&HttpRequest) -> bool,
}

impl RequestPacing {
    /// `limit` requests per `window_ms` for the requests `applies` picks.
    pub fn new(limit: u32, window_ms: Millis, applies: fn(&HttpRequest) -> bool) -> RequestPacing {
        RequestPacing {
            pacer: Arc::new(Mutex::new(Pacer::new(limit, window_ms, 0.05, Vec::new()))),
            applies,
        }
    }

    /// HubSpot's CRM searches, which HubSpot limits on their own, spaced
    /// to `per_second`.
    pub fn hubspot_searches(per_second: u32) -> RequestPacing {
        RequestPacing::new(per_second.max(1), 1_000, is_search)
    }

    /// Every request, spaced to `per_second` (HubSpot's burst limit counts
    /// all of a token's requests together).
    pub fn every_request(per_second: u32) -> RequestPacing {
        RequestPacing::new(per_second.max(1), 1_000, |_| true)
    }

    /// Waits, if `request` is paced, until its slot.
    pub async fn wait(&self, request: &HttpRequest, clock: &Clock) {
        if !(self.applies)(request) {
            return;
        }
        let slot = {
            let mut pacer = self.pacer.lock().unwrap_or_else(|p| p.into_inner());
            let slot = pacer.next_slot(clock.now_ms());
            pacer.record(slot);
            slot
        };
        clock.sleep_until(slot).await;
    }
}

/// Whether a request is a HubSpot CRM search.
fn is_search(request: &HttpRequest) -> bool {
    request.method == "POST" && request.path.ends_with("/search")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/crm/v3/objects/calls/search".into(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn owner() -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            path: "/crm/v3/owners/1".into(),
            headers: Vec::new(),
            body: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn searches_are_spaced_to_stay_under_the_per_second_limit() {
        let clock = Clock::starting_at(1_000_000);
        let pacing = RequestPacing::hubspot_searches(4);
        let mut sent = Vec::new();
        for _ in 0..12 {
            pacing.wait(&search(), &clock).await;
            sent.push(clock.now_ms());
        }
        for window in sent.windows(5) {
            assert!(
                window[4] - window[0] > 1_000,
                "five searches inside one second: {sent:?}"
            );
        }
        assert!(sent[11] - sent[0] < 3_000, "paced, not stalled: {sent:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_other_than_search_are_not_paced() {
        let clock = Clock::starting_at(1_000_000);
        let pacing = RequestPacing::hubspot_searches(1);
        for _ in 0..10 {
            pacing.wait(&owner(), &clock).await;
        }
        assert_eq!(clock.now_ms(), 1_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_searches_queue_for_their_slots() {
        let clock = Clock::starting_at(1_000_000);
        let pacing = RequestPacing::hubspot_searches(5);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let pacing = pacing.clone();
            tasks.push(tokio::spawn(async move {
                pacing.wait(&search(), &clock).await;
                clock.now_ms()
            }));
        }
        let mut sent = Vec::new();
        for task in tasks {
            sent.push(task.await.unwrap_or_default());
        }
        sent.sort_unstable();
        for window in sent.windows(6) {
            assert!(window[5] - window[0] > 1_000, "{sent:?}");
        }
    }
}
