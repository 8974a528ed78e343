//! Deciding stored calls again: a call skipped because of the configuration
//! (a rep missing from `[[reps]]`, a minimum duration, a dispositions list)
//! is not lost when the configuration changes. On each start the bridge
//! compares a digest of the rules with the one the stored decisions were
//! made under; when it differs, those calls are re-mapped under the new
//! rules from the source record kept for them. `kendo-bridge redecide` does
//! the same on demand, and can include failed calls.

use sha2::{Digest, Sha256};

use super::{Context, SourceError, Sources};
use crate::store::{CallKey, Intake, IntakeReport, State, StoreError};

pub use kendo_bridge_core::ledger::redecide::{
    FIXABLE_SKIPS, RETRYABLE_FAILURES, redecided_version,
};

/// What a re-decision did.
#[derive(Debug, Default, Clone)]
pub struct Redecided {
    /// Calls looked at.
    pub considered: u32,
    /// How their new decisions landed in the ledger.
    pub report: IntakeReport,
    /// Calls whose source record was not kept (decided by a version of the
    /// bridge that did not keep it, or deleted at the source): unchanged.
    pub not_kept: u32,
    /// Calls that could not be decided again now (a source error), with why:
    /// unchanged, tried again next time.
    pub errors: Vec<(CallKey, String)>,
}

/// A digest of everything a decision depends on besides the source record:
/// the rules, the rep directory, team routing and the plugin.
pub fn fingerprint(ctx: &Context) -> String {
    let plugin = ctx.plugin.plugin();
    let text = format!(
        "{:?}|{:?}|{}|{}",
        ctx.rules,
        ctx.config
            .kendo
            .teams
            .iter()
            .map(|t| (&t.name, &t.sources, &t.reps))
            .collect::<Vec<_>>(),
        plugin.origin(),
        plugin.component_size()
    );
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Sources {
    /// Decides again every call in `state` with one of `codes`, from the
    /// source record kept for it, under the rules now in force.
    pub async fn redecide(
        &self,
        ctx: &Context,
        state: State,
        codes: &[&'static str],
    ) -> Result<Redecided, StoreError> {
        let codes = codes.to_vec();
        let rows = ctx
            .store
            .ledger(move |db| kendo_bridge_core::ledger::redecide::decided_for(db, state, &codes))
            .await?;
        let mut done = Redecided::default();
        for (key, old) in rows {
            done.considered += 1;
            let version = redecided_version(&old, ctx.clock.now_ms());
            match self.redecide_one(&key, version).await {
                Ok(Some(intake)) => {
                    let report = ctx.intake(vec![intake], None).await?;
                    done.report.add(report);
                }
                Ok(None) => done.not_kept += 1,
                Err(SourceError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(
                        source = %key.source, id = %key.source_id, error = %e,
                        "could not decide this call again; it stays as it was"
                    );
                    done.errors.push((key, e.to_string()));
                }
            }
        }
        Ok(done)
    }

    async fn redecide_one(
        &self,
        key: &CallKey,
        version: String,
    ) -> Result<Option<Intake>, SourceError> {
        let id = key.source_id.as_str();
        match key.source.as_str() {
            "salesloft" => match &self.salesloft {
                Some(sl) => sl.redecide(id, version).await,
                None => Ok(None),
            },
            "hubspot" => match &self.hubspot {
                Some(hs) => hs.redecide(id, version).await,
                None => Ok(None),
            },
            "aloware" => match &self.aloware {
                Some(al) => al.redecide(id, version).await,
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// On start: when the rules changed since the stored decisions were
    /// made, decides again the calls skipped for a reason the configuration
    /// can fix. Returns what it did, or `None` when nothing changed.
    pub async fn redecide_if_rules_changed(
        &self,
        ctx: &Context,
    ) -> Result<Option<Redecided>, StoreError> {
        let now = fingerprint(ctx);
        let stored = ctx
            .store
            .ledger(kendo_bridge_core::ledger::redecide::fingerprint)
            .await?;
        if stored.as_deref() == Some(now.as_str()) {
            return Ok(None);
        }
        let done = self.redecide(ctx, State::Skipped, &FIXABLE_SKIPS).await?;
        let at = ctx.clock.now_ms();
        ctx.store
            .ledger(move |db| kendo_bridge_core::ledger::redecide::set_fingerprint(db, &now, at))
            .await?;
        if done.considered > 0 {
            tracing::info!(
                considered = done.considered,
                queued = done.report.enqueued,
                still_skipped = done.report.skipped,
                not_kept = done.not_kept,
                errors = done.errors.len(),
                "the rules changed: calls skipped for a reason the configuration can fix were decided again"
            );
        }
        Ok(Some(done))
    }
}
