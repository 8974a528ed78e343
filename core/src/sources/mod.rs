//! Each source's workflow: which request comes next, what is cached, what
//! a failed request costs. Pure, in the shape of the rest of the core: the
//! driver asks what is needed ([`hubspot::CallRead::next`]), has the plugin
//! plan that request and makes it, and passes the answer back. The plugin
//! plans and reads each request; the drivers only carry them.

pub mod hubspot;

use std::collections::HashMap;

use crate::Millis;

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

/// How a best-effort part of a source did, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `topic` worked.
    Ok(&'static str),
    /// `topic` has this problem, in words an operator can act on.
    Problem(&'static str, String),
}
