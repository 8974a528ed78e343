//! Salesloft: incremental call lists, users, transcripts, webhooks, mapping.

use crate::salesloft_api::{
    CallInputs, CallPage, Cursor, Guest, Listing, TranscriptionPage, WebhookEvent,
};
use crate::types::{Decision, HttpRequest, InputError, Rules, SyncMethod};

impl Guest for crate::Plugin {
    fn next_request(what: Listing, at: Cursor) -> HttpRequest {
        todo!()
    }
    fn read_page(at: Cursor, body: String) -> Result<CallPage, InputError> {
        todo!()
    }
    fn read_transcriptions(at: Cursor, body: String) -> Result<TranscriptionPage, InputError> {
        todo!()
    }
    fn user_request(user_id: String) -> HttpRequest {
        todo!()
    }
    fn conversation_request(conversation_id: String) -> HttpRequest {
        todo!()
    }
    fn read_conversation(body: String) -> Result<Option<String>, InputError> {
        todo!()
    }
    fn sentences_request(transcription_id: String, page: u32) -> HttpRequest {
        todo!()
    }
    fn sentences_has_more(body: String) -> Result<bool, InputError> {
        todo!()
    }
    fn read_webhook(event: String, body: String) -> Result<WebhookEvent, InputError> {
        todo!()
    }
    fn map_call(inputs: CallInputs, rules: Rules, via: SyncMethod) -> Result<Decision, InputError> {
        todo!()
    }
}
