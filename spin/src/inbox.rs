//! The app's driver of the core's inbox engine
//! ([`kendo_bridge_core::inbox`]): a delivery just answered is processed
//! on its own instance, and each tick takes a batch of those due (deferred,
//! or left by an instance that stopped); what each came to is logged, and
//! a delivery that queued a call has it sent at once when the key's window
//! allows.

use anyhow::Result;
use kendo_bridge_core::inbox::{self, PassLimits, Processed, Progress, Settings};
use kendo_bridge_core::ledger::inbox::InboxEntry;
use kendo_bridge_core::policy::Policy;

use crate::delivery::Db;
use crate::plugin_port::SpinPorts;
use crate::{log, variable};

/// What the engine needs from the app's variables for deliveries of
/// `source` (of every source: `None`). Every source is on (its webhooks
/// arrive only when its secret is set); each variable is a trip to the
/// host, so a webhook's processing reads only its own source's.
fn settings(source: Option<&str>) -> Settings {
    use kendo_bridge_core::inbox::KENDO;
    use kendo_bridge_core::sources::{aloware, hubspot, salesloft};
    let wanted = |name: &str| source.is_none_or(|s| s == name);
    Settings {
        hubspot: wanted(hubspot::SOURCE)
            .then(|| variable("hubspot_transcripts").is_some_and(|v| v == "true")),
        salesloft: wanted(salesloft::SOURCE).then(crate::salesloft::settings),
        aloware: wanted(aloware::SOURCE).then(crate::policy::aloware_transcript_wait_ms),
        write_backs: if wanted(KENDO) && crate::write_back::enabled() {
            vec![hubspot::SOURCE.to_string()]
        } else {
            Vec::new()
        },
    }
}

/// Processes `entry` (taken by its insert) and, when it queued a call,
/// sends what is due.
pub(crate) async fn process(db: &Db, entry: &InboxEntry) -> Result<()> {
    let ports = SpinPorts::new(db)?;
    let processed = inbox::process(&ports, &settings(Some(&entry.source)), entry).await?;
    logged(entry, &processed);
    if processed.queued() {
        crate::deliver(db).await?;
    }
    Ok(())
}

/// A tick's batch of the deliveries due (the core's `tick.inbox_batch`).
pub(crate) async fn pass(db: &Db) -> Result<Progress> {
    let ports = SpinPorts::new(db)?;
    let limits = PassLimits {
        batch: Policy::DEFAULT.tick.inbox_batch,
        batches: Some(1),
    };
    Ok(inbox::pass(&ports, &settings(None), limits, || false, logged).await?)
}

fn logged(entry: &InboxEntry, processed: &Processed) {
    let (source, delivery) = (entry.source.as_str(), entry.delivery_id.as_str());
    let (event, field, value) = match processed {
        Processed::Done { summary, .. } => ("processed", "what", summary.clone()),
        Processed::Deferred { at, reason } => (
            "deferred",
            "reason",
            format!("{reason} (next attempt at {at})"),
        ),
        Processed::Closed { reason, .. } => ("closed", "reason", reason.clone()),
    };
    log::line(
        event,
        &[("source", source), ("delivery", delivery), (field, &value)],
    );
}
