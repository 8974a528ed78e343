//! A test-only component: the default kendo-bridge plugin, except that
//! Salesloft `map-call` panics when the call JSON contains
//! `"kendo-bridge-test-trap"`, and never returns when it contains
//! `"kendo-bridge-test-hang"`; and Kendo's `read-ingest-response` panics on
//! a 2xx whose body is an error object.
//!
//! The host's tests load it to prove that a guest trap costs one record and
//! never the host: the instance is replaced and the next record maps.

use kendo_bridge_guest::Plugin;
use kendo_bridge_guest::aloware_api::{self, Event};
use kendo_bridge_guest::hubspot_api::{self, SearchOptions, SearchPage};
use kendo_bridge_guest::kendo_api::{
    self, BuildError, IngestOutcome, IngestRequest, PayloadOptions,
};
use kendo_bridge_guest::salesloft_api::{
    self, CallDataRecordPage, CallInputs, CallPage, Cursor, Listing, TranscriptionPage,
    WebhookEvent,
};
use kendo_bridge_guest::signatures_api::{self, Scheme, SignatureError, SignedRequest};
use kendo_bridge_guest::types::{
    Call, Decision, Header, HttpRequest, InputError, Rules, SyncMethod,
};

/// The marker that makes Salesloft `map-call` panic.
pub const TRAP_MARKER: &str = "kendo-bridge-test-trap";

/// What makes `read-ingest-response` panic in a 2xx answer's body: an
/// error object where Kendo's created call should be.
pub const ANSWER_TRAP_MARKER: &str = "\"error\"";

/// The marker that makes Salesloft `map-call` loop forever.
pub const HANG_MARKER: &str = "kendo-bridge-test-hang";

/// Delegates every export to [`Plugin`], with one deliberate panic.
pub struct TrapPlugin;

impl salesloft_api::Guest for TrapPlugin {
    fn next_request(what: Listing, at: Cursor) -> HttpRequest {
        <Plugin as salesloft_api::Guest>::next_request(what, at)
    }
    fn read_page(at: Cursor, body: String) -> Result<CallPage, InputError> {
        <Plugin as salesloft_api::Guest>::read_page(at, body)
    }
    fn read_transcriptions(at: Cursor, body: String) -> Result<TranscriptionPage, InputError> {
        <Plugin as salesloft_api::Guest>::read_transcriptions(at, body)
    }
    fn user_request(user_id: String) -> HttpRequest {
        <Plugin as salesloft_api::Guest>::user_request(user_id)
    }
    fn conversation_request(conversation_id: String) -> HttpRequest {
        <Plugin as salesloft_api::Guest>::conversation_request(conversation_id)
    }
    fn read_conversation(body: String) -> Result<Option<String>, InputError> {
        <Plugin as salesloft_api::Guest>::read_conversation(body)
    }
    fn read_call_data_records(at: Cursor, body: String) -> Result<CallDataRecordPage, InputError> {
        <Plugin as salesloft_api::Guest>::read_call_data_records(at, body)
    }
    fn sentences_request(transcription_id: String, page: u32) -> HttpRequest {
        <Plugin as salesloft_api::Guest>::sentences_request(transcription_id, page)
    }
    fn sentences_has_more(body: String) -> Result<bool, InputError> {
        <Plugin as salesloft_api::Guest>::sentences_has_more(body)
    }
    fn read_webhook(event: String, body: String) -> Result<WebhookEvent, InputError> {
        <Plugin as salesloft_api::Guest>::read_webhook(event, body)
    }
    fn map_call(inputs: CallInputs, rules: Rules, via: SyncMethod) -> Result<Decision, InputError> {
        if inputs.call.contains(TRAP_MARKER) {
            panic!("{TRAP_MARKER}: this record is built to crash the plugin");
        }
        if inputs.call.contains(HANG_MARKER) {
            // A plugin bug that never returns; only the host's call deadline
            // ends it.
            #[allow(clippy::empty_loop)]
            loop {}
        }
        <Plugin as salesloft_api::Guest>::map_call(inputs, rules, via)
    }
}

impl hubspot_api::Guest for TrapPlugin {
    fn search_request(at: hubspot_api::Cursor, options: SearchOptions) -> HttpRequest {
        <Plugin as hubspot_api::Guest>::search_request(at, options)
    }
    fn read_search(
        at: hubspot_api::Cursor,
        options: SearchOptions,
        body: String,
    ) -> Result<SearchPage, InputError> {
        <Plugin as hubspot_api::Guest>::read_search(at, options, body)
    }
    fn call_request(call_id: String) -> HttpRequest {
        <Plugin as hubspot_api::Guest>::call_request(call_id)
    }
    fn read_call(body: String) -> Result<hubspot_api::ListedCall, InputError> {
        <Plugin as hubspot_api::Guest>::read_call(body)
    }
    fn owner_request(owner_id: String, archived: bool) -> HttpRequest {
        <Plugin as hubspot_api::Guest>::owner_request(owner_id, archived)
    }
    fn dispositions_request() -> HttpRequest {
        <Plugin as hubspot_api::Guest>::dispositions_request()
    }
    fn associations_request(
        kind: hubspot_api::AssociationKind,
        call_ids: Vec<String>,
    ) -> HttpRequest {
        <Plugin as hubspot_api::Guest>::associations_request(kind, call_ids)
    }
    fn transcript_request(transcription_id: String) -> HttpRequest {
        <Plugin as hubspot_api::Guest>::transcript_request(transcription_id)
    }
    fn read_webhook(body: String) -> Result<hubspot_api::WebhookDelivery, InputError> {
        <Plugin as hubspot_api::Guest>::read_webhook(body)
    }
    fn map_call(
        inputs: hubspot_api::CallInputs,
        rules: Rules,
        via: SyncMethod,
    ) -> Result<Decision, InputError> {
        <Plugin as hubspot_api::Guest>::map_call(inputs, rules, via)
    }
}

impl aloware_api::Guest for TrapPlugin {
    fn read_event(body: String) -> Result<Event, InputError> {
        <Plugin as aloware_api::Guest>::read_event(body)
    }
    fn map_call(
        body: String,
        transcript: Option<String>,
        await_transcript: bool,
        rules: Rules,
        via: SyncMethod,
    ) -> Result<Decision, InputError> {
        <Plugin as aloware_api::Guest>::map_call(body, transcript, await_transcript, rules, via)
    }
    fn merge_bodies(before: Option<String>, newer: String) -> String {
        <Plugin as aloware_api::Guest>::merge_bodies(before, newer)
    }
}

impl kendo_api::Guest for TrapPlugin {
    fn build_ingest(call: Call, options: PayloadOptions) -> Result<IngestRequest, BuildError> {
        <Plugin as kendo_api::Guest>::build_ingest(call, options)
    }
    fn read_ingest_response(
        status: u16,
        headers: Vec<Header>,
        body: String,
        now_unix_seconds: u64,
    ) -> IngestOutcome {
        // A 2xx whose body is an error object (the simulated Kendo's
        // `fail_next(n, 200)`): the plugin stops reading it.
        if (200..300).contains(&status) && body.contains(ANSWER_TRAP_MARKER) {
            panic!("kendo-bridge-test-trap: a 2xx this plugin cannot read");
        }
        <Plugin as kendo_api::Guest>::read_ingest_response(status, headers, body, now_unix_seconds)
    }
    fn read_webhook(body: String) -> Result<kendo_api::WebhookEvent, InputError> {
        <Plugin as kendo_api::Guest>::read_webhook(body)
    }
}

impl signatures_api::Guest for TrapPlugin {
    fn verify(
        scheme: Scheme,
        secret: String,
        request: SignedRequest,
        now_ms: u64,
    ) -> Result<(), SignatureError> {
        <Plugin as signatures_api::Guest>::verify(scheme, secret, request, now_ms)
    }
}

kendo_bridge_guest::bindings::export!(TrapPlugin with_types_in kendo_bridge_guest::bindings);
