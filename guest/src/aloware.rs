//! Aloware: webhook envelopes and call mapping.

use crate::aloware_api::{Event, Guest};
use crate::types::{Decision, InputError, Rules, SyncMethod};

impl Guest for crate::Plugin {
    fn read_event(body: String) -> Result<Event, InputError> {
        todo!()
    }
    fn map_call(
        body: String,
        transcript: Option<String>,
        rules: Rules,
        via: SyncMethod,
    ) -> Result<Decision, InputError> {
        todo!()
    }
}
