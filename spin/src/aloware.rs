//! Aloware on Spin: the core's workflow
//! ([`kendo_bridge_core::sources::aloware`]) on the app's ports; a call it
//! queues is sent at once when the key's window allows.

use anyhow::Result;
use kendo_bridge_core::sources::aloware::{self, Handled};

use crate::delivery::Db;
use crate::plugin_port::SpinPorts;
use crate::{Processed, after_intake, policy};

/// Processes the stored delivery `sequence`.
pub async fn process(db: &Db, sequence: i64, body: &str) -> Result<Processed> {
    let ports = SpinPorts::new(db)?;
    let wait = policy::aloware_transcript_wait_ms();
    Ok(match aloware::receive(&ports, sequence, body, wait)? {
        Handled::Rejected { id, reason } => {
            Processed::Unreadable(format!("{reason} (recorded as {id})"))
        }
        Handled::Ignored(reason) => Processed::Answer(serde_json::json!({ "ignored": reason })),
        Handled::Held => {
            Processed::Answer(serde_json::json!({ "status": "held until the call arrives" }))
        }
        Handled::Decided(report) => Processed::Answer(after_intake(db, report).await?),
    })
}

/// Calls whose wait for a transcript is over go with their recording.
pub async fn sweep(db: &Db) -> Result<usize> {
    let report = aloware::sweep(&SpinPorts::new(db)?)?;
    Ok(report.records() as usize)
}
