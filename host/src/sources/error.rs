//! [`SourceError`]: why a source could not be read, or a delivery from it
//! handled, this time.

use crate::plugin::PluginError;
use crate::plugin::types::InputError;
use crate::store::StoreError;

/// Why a source could not be read this time. The poller logs it, leaves the
/// checkpoint where it was, and tries again next cycle.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{source_name} answered {status} to {method} {path}{hint}: {body}")]
    Status {
        source_name: &'static str,
        status: u16,
        method: String,
        path: String,
        body: String,
        /// What the operator should check (starts with "; "), or empty.
        hint: String,
    },
    /// A listing the poller needs does not exist at this URL: a
    /// configuration error (usually `api_url`), not a deleted record.
    #[error("{source_name} answered 404 (not found) to {method} {url}; {hint}")]
    NotFound {
        source_name: &'static str,
        method: String,
        url: String,
        hint: String,
    },
    /// A secret or setting the source needs cannot be resolved.
    #[error("{source_name} cannot start: {message}")]
    Config {
        source_name: &'static str,
        message: String,
    },
    #[error("{source_name} could not be reached for {path}: {message}")]
    Transport {
        source_name: &'static str,
        path: String,
        message: String,
    },
    #[error("{source_name} sent a page the plugin cannot read: {message}")]
    Unreadable {
        source_name: &'static str,
        message: String,
    },
    /// A property the bridge writes exists in HubSpot with another type;
    /// the text names it and what to do.
    #[error("{0}")]
    WrongProperty(String),
    #[error("{0} is not configured with credentials; set its api key / token to poll")]
    NoCredentials(&'static str),
    #[error("could not write the source cursor: {0}")]
    Checkpoint(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SourceError {
    /// A failure worth trying again with the same request later: the
    /// source or the store was unreachable, busy (429) or failing (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Transport { .. } | SourceError::Store(_) => true,
            SourceError::Status { status, .. } => kendo_bridge_core::sources::passing(*status),
            _ => false,
        }
    }

    /// A page or record the plugin could not read.
    pub fn unreadable(source_name: &'static str, error: &InputError) -> SourceError {
        SourceError::Unreadable {
            source_name,
            message: error.explain().to_string(),
        }
    }
}

impl From<kendo_bridge_core::ledger::LedgerError> for SourceError {
    fn from(e: kendo_bridge_core::ledger::LedgerError) -> SourceError {
        SourceError::Store(StoreError::Ledger(e))
    }
}

impl From<kendo_bridge_core::ports::Trap> for SourceError {
    fn from(
        kendo_bridge_core::ports::Trap(message): kendo_bridge_core::ports::Trap,
    ) -> SourceError {
        SourceError::Plugin(PluginError::Trap { message })
    }
}

impl From<kendo_bridge_core::ports::WorkflowError> for SourceError {
    fn from(e: kendo_bridge_core::ports::WorkflowError) -> SourceError {
        use kendo_bridge_core::ports::{Trap, WorkflowError};
        match e {
            WorkflowError::Ledger(e) => SourceError::Store(StoreError::Ledger(e)),
            WorkflowError::Plugin(Trap(message)) => {
                SourceError::Plugin(PluginError::Trap { message })
            }
            WorkflowError::Unreadable {
                source_name,
                message,
            } => SourceError::Unreadable {
                source_name,
                message,
            },
        }
    }
}

impl From<crate::ports::Interrupted> for SourceError {
    fn from(e: crate::ports::Interrupted) -> SourceError {
        SourceError::Store(StoreError::Interrupted(e.0))
    }
}
