//! [`Context`]: what every task of the bridge shares (the configuration,
//! the state database, the plugin, the clock, the HTTP client), and the
//! records every source makes through it (its health, its intake).

use std::sync::Arc;

use kendo_bridge_core::sources::Health;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::BridgeConfig;
use crate::plugin::types::Rules;
use crate::pool::PluginPool;
use crate::sources::{CycleReport, SourceError};
use crate::store::{Intake, IntakeReport, SharedStore, StoreError};

/// What every bridge task shares.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<BridgeConfig>,
    pub store: SharedStore,
    pub plugin: PluginPool,
    pub clock: Clock,
    pub http: reqwest::Client,
    pub rules: Rules,
    /// Wakes the delivery workers when new sends are queued.
    pub wake: Arc<Notify>,
}

impl Context {
    /// Records that `topic` of `source` worked now, clearing its problem.
    pub async fn health_ok(
        &self,
        source: &'static str,
        topic: &'static str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        self.store
            .ledger(move |db| kendo_bridge_core::ledger::health::ok(db, source, topic, now))
            .await
    }

    /// Records a problem with `topic` of `source` for `status`, logged at
    /// `warn` when it is new and at `debug` while it lasts, so a failure
    /// repeated every cycle does not flood the log.
    pub async fn health_problem(
        &self,
        source: &'static str,
        topic: &'static str,
        problem: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let text = problem.to_string();
        let new = self
            .store
            .ledger(move |db| {
                kendo_bridge_core::ledger::health::problem(db, source, topic, &text, now)
            })
            .await?;
        if new {
            tracing::warn!(source, topic, problem, "source problem");
        } else {
            tracing::debug!(source, topic, problem, "source problem persists");
        }
        Ok(())
    }

    /// Records how a poll cycle went under the `poll` topic.
    pub async fn poll_health(
        &self,
        source: &'static str,
        outcome: &Result<CycleReport, SourceError>,
    ) -> Result<(), StoreError> {
        match kendo_bridge_core::sources::poll::health(outcome) {
            Health::Ok(topic) => self.health_ok(source, topic).await,
            Health::Problem(topic, problem) => self.health_problem(source, topic, &problem).await,
        }
    }

    /// Records decisions (and moves a checkpoint with them), then wakes the
    /// delivery workers if that queued sends.
    pub async fn intake(
        &self,
        items: Vec<Intake>,
        checkpoint: Option<(String, String)>,
    ) -> Result<IntakeReport, StoreError> {
        let now = self.clock.now_ms();
        let report = self
            .store
            .ledger(move |db| {
                kendo_bridge_core::ledger::intake::intake(
                    db,
                    &items,
                    checkpoint.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                    now,
                )
            })
            .await?;
        self.queued(&report);
        Ok(report)
    }

    /// Wakes the delivery workers when an intake queued sends.
    pub fn queued(&self, report: &IntakeReport) {
        if report.enqueued + report.updated > 0 {
            self.wake.notify_waiters();
        }
    }
}
