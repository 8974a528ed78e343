//! The ports a source's workflow runs over: the state database, the
//! plugin, the clock and the team routing. Each driver implements them
//! once (the host over rusqlite, its plugin pool and tokio's clock; the
//! Spin app over Spin's SQLite, the composed plugin and the wall clock),
//! and the workflows in [`crate::sources`] call them in their order, so
//! the order of the steps is written once.
//!
//! The workflows are synchronous: the plugin is a synchronous call in both
//! drivers, Spin's SQLite is synchronous, and the host runs a workflow on
//! tokio's blocking pool. A port's method that fails for a reason of the
//! driver's own (a database busy past its timeout, a plugin trap) returns a
//! [`WorkflowError`]; what a failure costs is the core's decision
//! ([`crate::ledger::inbox::failure`]).

use crate::Millis;
use crate::decision::{Decided, InputProblem};
use crate::ledger::{Database, LedgerError};

/// What the plugin decided about a record, before the payload is built:
/// `C` is the driver's call record, handed back to [`Plugin::build`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<C> {
    Send(C),
    /// `code` is the plugin's `skip-code` case name.
    Skip {
        code: String,
        detail: String,
    },
    /// `code` is the plugin's `wait-code` case name.
    Wait {
        code: String,
        detail: String,
    },
}

/// A plugin's answer about one record: a decision, or why the record
/// cannot be read.
pub type Read<T> = Result<T, InputProblem>;

/// The plugin trapped (its instance is lost; the driver makes a new one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plugin trapped: {0}")]
pub struct Trap(pub String);

/// How a record arrived: the ledger's `sync_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Polling,
    Webhook,
    Workflow,
}

impl Via {
    /// The name stored in the ledger.
    pub fn name(self) -> &'static str {
        use crate::sources::via;
        match self {
            Via::Polling => via::POLLING,
            Via::Webhook => via::WEBHOOK,
            Via::Workflow => via::WORKFLOW,
        }
    }
}

/// An Aloware delivery as the plugin reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum AlowareEvent {
    /// A call event, with its whole body (merged with what is held).
    Call { call_id: String, body: String },
    /// A transcript event: `transcript` is the text of the call; a summary
    /// alone has none.
    Transcript {
        name: String,
        call_id: String,
        transcript: Option<String>,
    },
    /// Not a call (an SMS, a test payload, an unknown event): `code` is
    /// the plugin's `ignore-code` case name.
    Ignore { code: String, detail: String },
}

/// The calls a HubSpot webhook or workflow delivery names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubspotDelivery {
    pub call_ids: Vec<String>,
    /// Events of the delivery that are not about calls: each says the
    /// HubSpot app's subscriptions need a look.
    pub ignored: Vec<String>,
}

/// One HubSpot call as read (by id, or on a search page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubspotCall {
    pub id: String,
    /// `hs_lastmodifieddate`, in epoch ms: the call's version.
    pub modified_ms: u64,
    pub owner_id: Option<String>,
    pub transcription_id: Option<String>,
    /// The call object as HubSpot sent it, for `map-call`.
    pub json: String,
}

/// A listed record the plugin could not read: its id when it has one,
/// where it was, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub id: Option<String>,
    pub at: String,
    pub problem: InputProblem,
}

/// How a HubSpot calls search pages (the plugin's `search-options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOptions {
    /// Results per page (at most 200).
    pub limit: u32,
    /// Search lags writes: each cycle re-reads this much before the
    /// newest change it saw.
    pub lookback_ms: u64,
}

/// One page of HubSpot's calls search, as the plugin reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub calls: Vec<HubspotCall>,
    pub rejected: Vec<Rejected>,
    /// Where the next page starts.
    pub next: crate::sources::hubspot::StoredCursor,
    /// Whether HubSpot has more now.
    pub more: bool,
}

/// The plugin, as the workflows call it. Every method is one plugin call;
/// `Err(Trap)` when the plugin trapped.
pub trait Plugin {
    /// The driver's call record (the plugin's `call`).
    type Call;
    /// A request the plugin planned (the plugin's `http-request`), for the
    /// driver's HTTP port to make.
    type Request;

    /// The path a planned request names (in what `status` shows).
    fn request_path(&self, request: &Self::Request) -> String;

    /// The call's payload, built for Kendo, or why it cannot be; a trap
    /// building it is [`Decided::Trapped`].
    fn build(&self, call: Self::Call) -> Decided;

    /// The rep email a call to send names (routes it to a team).
    fn rep_email<'a>(&self, call: &'a Self::Call) -> Option<&'a str>;

    fn aloware_read_event(&self, body: &str) -> Result<Read<AlowareEvent>, Trap>;

    fn aloware_merge_bodies(&self, before: Option<&str>, newer: &str) -> Result<String, Trap>;

    fn aloware_map_call(
        &self,
        body: &str,
        transcript: Option<&str>,
        await_transcript: bool,
        via: Via,
    ) -> Result<Read<Decision<Self::Call>>, Trap>;
}

/// HubSpot's half of the plugin.
pub trait HubspotPlugin: Plugin {
    fn hubspot_read_webhook(&self, body: &str) -> Result<Read<HubspotDelivery>, Trap>;
    fn hubspot_call_request(&self, call_id: &str) -> Result<Self::Request, Trap>;
    fn hubspot_read_call(&self, body: &str) -> Result<Read<HubspotCall>, Trap>;
    fn hubspot_owner_request(&self, owner_id: &str, archived: bool) -> Result<Self::Request, Trap>;
    fn hubspot_dispositions_request(&self) -> Result<Self::Request, Trap>;
    fn hubspot_transcript_request(&self, transcription_id: &str) -> Result<Self::Request, Trap>;
    fn hubspot_search_request(
        &self,
        at: &crate::sources::hubspot::StoredCursor,
        options: SearchOptions,
    ) -> Result<Self::Request, Trap>;
    fn hubspot_read_search(
        &self,
        at: &crate::sources::hubspot::StoredCursor,
        options: SearchOptions,
        body: &str,
    ) -> Result<Read<SearchPage>, Trap>;
    fn hubspot_associations_request(
        &self,
        kind: crate::sources::hubspot::Association,
        call_ids: &[String],
    ) -> Result<Self::Request, Trap>;
    fn hubspot_map_call(
        &self,
        call: &HubspotCall,
        inputs: crate::sources::hubspot::Inputs,
        associations: &crate::sources::hubspot::Associations,
        via: Via,
    ) -> Result<Read<Decision<Self::Call>>, Trap>;
}

/// A source's API, as the workflows call it: each request is one the
/// plugin planned. `Ok(None)` is a 404 (the record is gone). The driver
/// adds the credentials, paces, waits out 429s and retries what is worth
/// retrying within one request; an `Err` is what is left.
pub trait SourceApi: Ports {
    /// A driver's error: from the ledger or the plugin too, so a workflow
    /// has one error type.
    type Error: From<WorkflowError> + From<LedgerError> + From<Trap> + std::fmt::Display;

    fn fetch(
        &self,
        source: &'static str,
        request: &<Self::Plugin as Plugin>::Request,
    ) -> impl std::future::Future<Output = Result<Option<String>, Self::Error>>;

    /// Whether trying the request again later may work (no answer, a 429,
    /// a 5xx: [`crate::sources::passing`]).
    fn passing(&self, error: &Self::Error) -> bool;

    /// The error for a list that answered 404: the API's URL is wrong (a
    /// list is never deleted).
    fn list_not_found(
        &self,
        source: &'static str,
        request: &<Self::Plugin as Plugin>::Request,
    ) -> Self::Error;

    /// Runs `f` on the caches of HubSpot owners and dispositions (the host
    /// keeps them across deliveries; a Spin instance for one request).
    fn hubspot_lookups<R>(
        &self,
        f: impl FnOnce(&mut crate::sources::Lookups, &mut crate::sources::Lookups) -> R,
    ) -> R;
}

/// Where a Salesloft list is read from (the plugin's `cursor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub updated_since: Option<String>,
    pub page: u32,
}

/// Which Salesloft list (the plugin's `listing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Calls,
    CallDataRecords,
    Transcriptions,
}

/// One Salesloft call as listed or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesloftCall {
    pub id: String,
    /// Its ledger version.
    pub updated_at: String,
    pub user_id: Option<String>,
    /// The call as Salesloft sent it, for `map-call`.
    pub json: String,
}

/// A page of Salesloft's calls list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPage {
    pub calls: Vec<SalesloftCall>,
    pub rejected: Vec<Rejected>,
    pub next: ListCursor,
    pub more: bool,
}

/// A call data record as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDataRecord {
    pub call_id: Option<String>,
    pub updated_at: String,
    pub json: String,
}

/// A page of call data records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPage {
    pub records: Vec<CallDataRecord>,
    pub rejected: Vec<Rejected>,
    pub next: ListCursor,
    pub more: bool,
}

/// A transcription as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcription {
    pub id: String,
    pub conversation_id: Option<String>,
}

/// A page of transcriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionPage {
    pub transcriptions: Vec<Transcription>,
    pub next: ListCursor,
    pub more: bool,
}

/// A Salesloft webhook delivery as the plugin reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SalesloftEvent {
    Call(SalesloftCall),
    /// Not a call event: why.
    Ignore(String),
}

/// What the plugin's Salesloft `map-call` gets besides the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesloftInputs {
    pub user: Option<String>,
    pub sentences: Vec<String>,
    pub call_data_record: Option<String>,
}

/// Salesloft's half of the plugin.
pub trait SalesloftPlugin: Plugin {
    fn salesloft_next_request(
        &self,
        listing: Listing,
        at: &ListCursor,
    ) -> Result<Self::Request, Trap>;
    fn salesloft_read_page(&self, at: &ListCursor, body: &str) -> Result<Read<CallPage>, Trap>;
    fn salesloft_read_call_data_records(
        &self,
        at: &ListCursor,
        body: &str,
    ) -> Result<Read<RecordPage>, Trap>;
    fn salesloft_read_transcriptions(
        &self,
        at: &ListCursor,
        body: &str,
    ) -> Result<Read<TranscriptionPage>, Trap>;
    fn salesloft_user_request(&self, user_id: &str) -> Result<Self::Request, Trap>;
    fn salesloft_conversation_request(&self, conversation_id: &str) -> Result<Self::Request, Trap>;
    /// The call a conversation names, if any.
    fn salesloft_read_conversation(&self, body: &str) -> Result<Read<Option<String>>, Trap>;
    fn salesloft_sentences_request(
        &self,
        transcription_id: &str,
        page: u32,
    ) -> Result<Self::Request, Trap>;
    fn salesloft_sentences_has_more(&self, body: &str) -> Result<Read<bool>, Trap>;
    fn salesloft_read_webhook(&self, event: &str, body: &str)
    -> Result<Read<SalesloftEvent>, Trap>;
    fn salesloft_map_call(
        &self,
        call: &SalesloftCall,
        inputs: SalesloftInputs,
        via: Via,
    ) -> Result<Read<Decision<Self::Call>>, Trap>;
    /// Whether a call to send has a direction.
    fn has_direction(&self, call: &Self::Call) -> bool;
}

/// Salesloft's API as the workflow spends it: besides [`SourceApi`], the
/// user cache and the budget. A driver that paces its requests under the
/// team's budget (the host) never says it is spent; one that caps a tick's
/// requests (Spin) counts them.
pub trait SalesloftApi: SourceApi {
    /// Runs `f` on the cache of users.
    fn salesloft_users<R>(&self, f: impl FnOnce(&mut crate::sources::Lookups) -> R) -> R;

    /// Whether reading stops now: `limit` requests made in this run (when
    /// the driver counts), or the team's cost points nearly out.
    fn salesloft_spent(&self, limit: Option<u32>) -> bool;

    /// Requests made in this run so far.
    fn salesloft_requests(&self) -> u32;

    /// Whether the user records can be read (an API key is set).
    fn salesloft_can_read(&self) -> bool;
}

/// Everything a workflow runs over.
pub trait Ports {
    type Db: Database + ?Sized;
    type Plugin: Plugin;

    fn db(&self) -> &Self::Db;
    fn plugin(&self) -> &Self::Plugin;
    /// Now, in epoch milliseconds (the driver's clock: tests move it).
    fn now(&self) -> Millis;
    /// The Kendo team a source's call goes to (by its rep, when known).
    fn team(&self, source: &str, rep_email: Option<&str>) -> String;
}

/// Why a workflow stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Plugin(#[from] Trap),
    /// What a source sent cannot be read (a page, a cursor): why.
    #[error("{source_name}: {message}")]
    Unreadable {
        source_name: &'static str,
        message: String,
    },
}
