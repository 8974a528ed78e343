//! [`SourceApi`]: the HTTP client of one source's API.

use std::sync::Arc;
use std::time::Duration;

use kendo_bridge_core::policy::Policy;

use super::answer::{excerpt, header_number};
use super::{RateBudget, RequestPacing};
use crate::clock::Clock;
use crate::context::Context;
use crate::pacing::Backoff;
use crate::plugin::types::HttpRequest;
use crate::sources::SourceError;
use crate::store::{SharedStore, counter};

/// An HTTP client for one source API: adds the bearer token, waits out
/// 429s (`Retry-After`, or a short back-off when absent), retries 5xx and
/// transport failures a few times, and counts every 429.
#[derive(Clone)]
pub struct SourceApi {
    name: &'static str,
    base: String,
    token: String,
    http: reqwest::Client,
    clock: Clock,
    store: SharedStore,
    /// Attempts per request before giving up for this cycle, and the waits
    /// between them.
    retry: Backoff,
    timeout: Duration,
    /// Requests the source limits on their own (HubSpot search).
    pacing: Option<RequestPacing>,
    /// The configuration key of the credential (`salesloft.api_key`), named
    /// when the source refuses it.
    secret_key: String,
    /// A budget every request of the source spends (Salesloft's team-wide
    /// cost points).
    budget: Option<Arc<dyn RateBudget>>,
}

impl SourceApi {
    /// The API client of a source whose credentials are configured; None
    /// when they are not (webhook-only deployments).
    pub fn configured(
        name: &'static str,
        base: &str,
        secret: Option<&crate::config::SecretRef>,
        what: &str,
        ctx: &Context,
    ) -> Result<Option<SourceApi>, SourceError> {
        let Some(secret) = secret else {
            return Ok(None);
        };
        let token = secret.resolve(what).map_err(|e| SourceError::Config {
            source_name: name,
            message: e.to_string(),
        })?;
        let mut api = SourceApi::new(name, base, token, ctx);
        api.secret_key = what.to_string();
        Ok(Some(api))
    }

    pub fn new(name: &'static str, base: &str, token: String, ctx: &Context) -> SourceApi {
        SourceApi {
            name,
            base: base.trim_end_matches('/').to_string(),
            token,
            http: ctx.http.clone(),
            clock: ctx.clock,
            store: ctx.store.clone(),
            retry: Policy::DEFAULT.retry.source_request,
            timeout: Duration::from_millis(Policy::DEFAULT.polling.request_timeout_ms as u64),
            pacing: None,
            budget: None,
            secret_key: format!("{name} credentials"),
        }
    }

    /// The same client spending `budget` with every request.
    pub fn budgeted(mut self, budget: Arc<dyn RateBudget>) -> SourceApi {
        self.budget = Some(budget);
        self
    }

    /// The same client with `pacing` applied to the requests it picks.
    pub fn paced(mut self, pacing: RequestPacing) -> SourceApi {
        self.pacing = Some(pacing);
        self
    }

    /// The same client making at most `attempts` attempts per request, for
    /// callers with a durable back-off of their own (write-backs): a failure
    /// is returned at once instead of slept over here.
    pub fn with_attempts(mut self, attempts: u32) -> SourceApi {
        self.retry.max_attempts = attempts.max(1);
        self
    }

    /// Requests a listing (a page of calls): a 404 here means the listing
    /// is not at this URL, which is a configuration error, not "no calls".
    pub async fn fetch_list(&self, request: &HttpRequest) -> Result<String, SourceError> {
        match self.fetch(request).await? {
            Some(body) => Ok(body),
            None => Err(self.list_not_found(request)),
        }
    }

    /// The source's name (`hubspot`, `salesloft`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The error for a listing that answered 404, naming the setting.
    pub fn list_not_found(&self, request: &HttpRequest) -> SourceError {
        super::answer::list_not_found(self.name, &self.base, request)
    }

    /// Makes a request the plugin planned and returns the body of a 2xx.
    /// A 404 is returned as `Ok(None)`: a deleted record is not an outage.
    /// Listings use [`SourceApi::fetch_list`] instead.
    pub async fn fetch(&self, request: &HttpRequest) -> Result<Option<String>, SourceError> {
        let url = format!("{}{}", self.base, request.path);
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            SourceError::Unreadable {
                source_name: self.name,
                message: format!("the plugin asked for HTTP method {:?}", request.method),
            }
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(pacing) = &self.pacing {
                pacing.wait(request, &self.clock).await;
            }
            if let Some(budget) = &self.budget {
                let slot = budget.reserve(request, self.clock.now_ms());
                self.clock.sleep_until(slot).await;
            }
            let mut builder = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.token)
                .timeout(self.timeout);
            for h in &request.headers {
                builder = builder.header(&h.name, &h.value);
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            // A failed attempt: the error it ends in when it is the last,
            // and the server's `Retry-After`, if it gave one.
            let sent = builder.send().await;
            self.count(&sent).await?;
            let (failure, retry_after) = match sent {
                Ok(response) => {
                    if let Some(budget) = &self.budget {
                        budget.observe(self.clock.now_ms(), response.headers());
                    }
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| crate::pacing::retry_after_ms(v, self.clock.now_ms()));
                    let remaining =
                        header_number(response.headers(), "x-ratelimit-remaining-minute");
                    let body = response.text().await.unwrap_or_default();
                    let hint = match status {
                        200..=299 => {
                            if remaining == Some(0) {
                                // Salesloft's budget is shared by the whole
                                // team: leave the rest of the minute to others.
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                            return Ok(Some(body));
                        }
                        404 => return Ok(None),
                        429 => {
                            let scope = self.name.to_string();
                            self.store
                                .ledger(move |db| {
                                    kendo_bridge_core::ledger::bump(
                                        db,
                                        &scope,
                                        counter::SOURCE_429,
                                        1,
                                    )
                                })
                                .await?;
                            String::new()
                        }
                        500..=599 => String::new(),
                        _ => {
                            let hint = match status {
                                401 | 403 => format!(
                                    "; check `{}` (the source refused the credential)",
                                    self.secret_key
                                ),
                                _ => String::new(),
                            };
                            return Err(SourceError::Status {
                                source_name: self.name,
                                status,
                                method: request.method.clone(),
                                path: request.path.clone(),
                                body: excerpt(&body),
                                hint,
                            });
                        }
                    };
                    // The status of the last retryable answer, for the
                    // error when the attempts run out (a 503 must not be
                    // reported as a 429).
                    let failure = SourceError::Status {
                        source_name: self.name,
                        status,
                        method: request.method.clone(),
                        path: request.path.clone(),
                        body: format!(
                            "still failing after {attempt} attempt(s): {}",
                            excerpt(&body)
                        ),
                        hint,
                    };
                    (failure, retry_after)
                }
                Err(e) => {
                    let failure = SourceError::Transport {
                        source_name: self.name,
                        path: request.path.clone(),
                        message: e.to_string(),
                    };
                    (failure, None)
                }
            };
            // The one retry policy of the bridge (Kendo sends use it too):
            // exponential back-off with full jitter, or the server's
            // `Retry-After`, within this request's attempts.
            let Some(wait_ms) = self.retry.wait(attempt, retry_after, rand::random()) else {
                return Err(failure);
            };
            tracing::debug!(source = self.name, path = %request.path, wait_ms, "retrying source request");
            self.clock.sleep_until(self.clock.now_ms() + wait_ms).await;
        }
    }

    /// Counts a request for `/metrics`: answered or failed, and the cost
    /// points the source says it cost.
    async fn count(
        &self,
        sent: &Result<reqwest::Response, reqwest::Error>,
    ) -> Result<(), SourceError> {
        let (ok, cost) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let cost = header_number(response.headers(), "x-ratelimit-endpoint-cost");
                ((200..300).contains(&status) || status == 404, cost)
            }
            Err(_) => (false, None),
        };
        let scope = self.name.to_string();
        self.store
            .run(move |s| {
                let name = if ok {
                    counter::SOURCE_REQUESTS_OK
                } else {
                    counter::SOURCE_REQUESTS_ERROR
                };
                kendo_bridge_core::ledger::bump(s.database(), &scope, name, 1)?;
                if let Some(cost) = cost.filter(|c| *c > 0) {
                    kendo_bridge_core::ledger::bump(
                        s.database(),
                        &scope,
                        counter::SOURCE_COST_POINTS,
                        cost,
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}
