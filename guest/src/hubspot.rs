//! HubSpot: incremental calls search, owners, dispositions, transcripts, webhooks, mapping.

use crate::hubspot_api::{CallInputs, Cursor, Guest, ListedCall, SearchOptions, SearchPage};
use crate::types::{Decision, HttpRequest, InputError, Rules, SyncMethod};

impl Guest for crate::Plugin {
    fn search_request(at: Cursor, options: SearchOptions) -> HttpRequest {
        todo!()
    }
    fn read_search(at: Cursor, options: SearchOptions, body: String) -> Result<SearchPage, InputError> {
        todo!()
    }
    fn call_request(call_id: String) -> HttpRequest {
        todo!()
    }
    fn read_call(body: String) -> Result<ListedCall, InputError> {
        todo!()
    }
    fn owner_request(owner_id: String) -> HttpRequest {
        todo!()
    }
    fn dispositions_request() -> HttpRequest {
        todo!()
    }
    fn transcript_request(transcription_id: String) -> HttpRequest {
        todo!()
    }
    fn read_webhook(body: String) -> Result<Vec<String>, InputError> {
        todo!()
    }
    fn map_call(inputs: CallInputs, rules: Rules, via: SyncMethod) -> Result<Decision, InputError> {
        todo!()
    }
}
