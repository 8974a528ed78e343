//! Kendo Push API payloads, ingest responses and outgoing webhooks.

use crate::kendo_api::{BuildError, Guest, IngestOutcome, IngestRequest, PayloadOptions, WebhookEvent};
use crate::types::{Call, Header, InputError};

impl Guest for crate::Plugin {
    fn build_ingest(call: Call, options: PayloadOptions) -> Result<IngestRequest, BuildError> {
        todo!()
    }
    fn read_ingest_response(
        status: u16,
        headers: Vec<Header>,
        body: String,
        now_unix_seconds: u64,
    ) -> IngestOutcome {
        todo!()
    }
    fn read_webhook(body: String) -> Result<WebhookEvent, InputError> {
        todo!()
    }
}
