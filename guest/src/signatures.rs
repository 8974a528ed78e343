//! Webhook signature schemes.

use crate::signatures_api::{Guest, Scheme, SignatureError, SignedRequest};

impl Guest for crate::Plugin {
    fn verify(
        scheme: Scheme,
        secret: String,
        request: SignedRequest,
        now_ms: u64,
    ) -> Result<(), SignatureError> {
        todo!()
    }
}
