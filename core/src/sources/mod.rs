//! Each source's workflow: which request comes next, what is cached, what
//! a failed request costs. Pure, in the shape of the rest of the core: the
//! driver asks what is needed ([`hubspot::CallRead::next`]), has the plugin
//! plan that request and makes it, and passes the answer back. The plugin
//! plans and reads each request; the drivers only carry them.

pub mod aloware;
pub mod budget;
pub mod hubspot;
pub mod poll;
pub mod salesloft;
pub mod write_back;

use std::collections::HashMap;

/// Every source whose calls, webhooks and counters the bridge keeps, by the
/// name the ledger, its counters and its health are kept under; Kendo's own
/// results webhook last. `status`, the page and `/metrics` list counters of
/// these: a new source added here shows there.
pub const ALL: [&str; 4] = [salesloft::SOURCE, HUBSPOT, aloware::SOURCE, KENDO];

/// HubSpot's name in the ledger.
pub const HUBSPOT: &str = "hubspot";
/// Kendo's results webhook, kept as a source of deliveries.
pub const KENDO: &str = "kendo";

use crate::Millis;
use crate::ledger::CallKey;
use crate::ledger::intake::{Intake, Outcome};

/// Bodies read from a source API, kept for an hour: a rep's owner record,
/// the portal's dispositions. `Some(None)` is a lookup known to be missing
/// (a 404), cached too.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    entries: HashMap<String, (Millis, Option<String>)>,
}

impl Lookups {
    /// How long an entry is trusted.
    pub const TTL_MS: Millis = 3_600_000;

    /// The cached body for `id` (Some(None): known to be missing).
    pub fn get(&self, id: &str, now: Millis) -> Option<Option<String>> {
        self.entries
            .get(id)
            .filter(|(at, _)| now - at < Self::TTL_MS)
            .map(|(_, body)| body.clone())
    }

    pub fn put(&mut self, id: &str, body: Option<String>, now: Millis) {
        self.entries.insert(id.to_string(), (now, body));
    }
}

/// How a call reached the bridge, as the ledger names it (the plugin's
/// `sync-method`): each driver maps its binding's enum to one of these.
pub mod via {
    pub const POLLING: &str = "polling";
    pub const WEBHOOK: &str = "webhook";
    pub const WORKFLOW: &str = "workflow";
}

/// Whether a source API's answer is a passing failure, worth the same
/// request again later: a 429 or a 5xx (transport failures are passing
/// too). Anything else (401, 403, 400) is fixed only by a person.
pub fn passing(status: u16) -> bool {
    status == 429 || status >= 500
}

pub use crate::ledger::health::Health;

/// A listed record the plugin could not read, kept as a failed ledger row
/// with the reason: under its id when it was read, else under a synthetic
/// id naming where it was (`unreadable:<position>:<index>`). Its version is
/// the lowest (`0`, zero-padded to the source's version width), so the
/// record, once readable again, replaces this row.
pub fn rejected(
    source: &str,
    team: &str,
    id: Option<&str>,
    position: &str,
    index: usize,
    version_width: usize,
    detail: String,
) -> Intake {
    Intake {
        key: CallKey {
            source: source.to_string(),
            source_id: match id {
                Some(id) => id.to_string(),
                None => format!("unreadable:{position}:{index}"),
            },
            team: team.to_string(),
        },
        version: format!("{:0width$}", 0, width = version_width.max(1)),
        sync_method: "polling".to_string(),
        outcome: Outcome::Fail {
            code: "unreadable".into(),
            detail,
        },
    }
}
