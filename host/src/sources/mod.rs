//! The sources: one module per system the bridge reads from.
//!
//! Each source's workflow (what to read, in which order, what a failure
//! costs, what the plugin decides) is the core's
//! ([`kendo_bridge_core::sources`]). A module here builds its source from
//! the configuration and runs those workflows on the host's ports
//! ([`crate::ports::HostPorts`]); requests go through the source client
//! ([`crate::source_http`]), stored deliveries through the inbox's engine
//! ([`crate::inbox`]) on [`Sources::ports`].

pub mod aloware;
mod error;
pub mod hubspot;
pub mod poll;
pub mod redecide;
pub mod salesloft;
pub mod write_back;

use std::sync::{Arc, Mutex};

use kendo_bridge_core::sources::Lookups;

pub use crate::context::Context;
pub use crate::source_http::SourceApi;
pub use error::SourceError;
pub use poll::CycleReport;

/// A cache of looked-up records (Salesloft users, HubSpot owners and
/// dispositions), shared by the source's tasks: reps make many calls, and
/// every lookup spends the source's rate budget. The caching rule is the
/// core's ([`kendo_bridge_core::sources::Lookups`]).
#[derive(Clone, Default)]
pub struct LookupCache {
    entries: Arc<Mutex<Lookups>>,
}

impl LookupCache {
    /// Runs `f` on the cache (never across an await: the lock is a plain
    /// mutex).
    pub fn with<R>(&self, f: impl FnOnce(&mut Lookups) -> R) -> R {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut entries)
    }
}

/// The enabled sources.
#[derive(Clone)]
pub struct Sources {
    pub salesloft: Option<salesloft::Salesloft>,
    pub hubspot: Option<hubspot::Hubspot>,
    pub aloware: Option<aloware::Aloware>,
}

impl Sources {
    /// Sets up every source enabled in the configuration.
    pub fn new(ctx: &Context) -> Result<Sources, SourceError> {
        Ok(Sources {
            salesloft: salesloft::Salesloft::new(ctx)?,
            hubspot: hubspot::Hubspot::new(ctx)?,
            aloware: aloware::Aloware::new(ctx),
        })
    }

    /// Ports reading every enabled source's API, with its caches: what a
    /// stored delivery of any source is processed with.
    pub fn ports<'a>(&'a self, ctx: &'a Context) -> crate::ports::HostPorts<'a> {
        let ports = crate::ports::HostPorts::new(ctx);
        let ports = match &self.hubspot {
            Some(hs) => hs.reading(ports),
            None => ports,
        };
        match &self.salesloft {
            Some(sl) => sl.reading(ports),
            None => ports,
        }
    }
}
