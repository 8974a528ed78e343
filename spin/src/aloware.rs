//! Aloware on Spin: the core's workflow
//! ([`kendo_bridge_core::sources::aloware`]) on the app's ports; a call it
//! queues is sent at once when the key's window allows.

use anyhow::Result;
use kendo_bridge_core::sources::aloware;

use crate::delivery::Db;
use crate::plugin_port::SpinPorts;

/// Calls whose wait for a transcript is over go with their recording.
pub async fn sweep(db: &Db) -> Result<usize> {
    let report = aloware::sweep(&SpinPorts::new(db)?)?;
    Ok(report.records() as usize)
}
