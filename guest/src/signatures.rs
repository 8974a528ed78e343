//! Webhook signature schemes.
//!
//! Every comparison of a secret-derived value is constant-time; a request is
//! read completely (headers present and well-formed, timestamp in the
//! window) before any comparison is made.

use crate::prelude::*;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::signatures_api::{Guest, Scheme, SignatureError, SignedRequest, Staleness};
use crate::types::Header;

impl Guest for crate::Plugin {
    fn verify(
        scheme: Scheme,
        secret: String,
        request: SignedRequest,
        now_ms: u64,
    ) -> Result<(), SignatureError> {
        verify(scheme, &secret, &request, now_ms)
    }
}

/// HubSpot v3 and Standard Webhooks both allow five minutes either way.
const TOLERANCE_MS: u64 = 5 * 60 * 1000;

const KENDO_SIGNATURE: &str = "X-Kendo-Signature";
const SALESLOFT_SIGNATURE: &str = "x-salesloft-signature";
const HUBSPOT_SIGNATURE: &str = "X-HubSpot-Signature";
const HUBSPOT_SIGNATURE_V3: &str = "X-HubSpot-Signature-v3";
const HUBSPOT_TIMESTAMP: &str = "X-HubSpot-Request-Timestamp";
const WEBHOOK_ID: &str = "webhook-id";
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
const WEBHOOK_SIGNATURE: &str = "webhook-signature";
const AUTHORIZATION: &str = "Authorization";

fn verify(
    scheme: Scheme,
    secret: &str,
    request: &SignedRequest,
    now_ms: u64,
) -> Result<(), SignatureError> {
    if secret.trim().is_empty() {
        return Err(SignatureError::InvalidSecret(
            "the secret is empty".to_string(),
        ));
    }
    let headers = request.headers.as_slice();
    let body = request.body.as_slice();
    let matched = match scheme {
        Scheme::Kendo => {
            let given = kendo_signature(required(headers, KENDO_SIGNATURE)?)?;
            let expected = hmac_sha256(secret.as_bytes(), &[body])?;
            equal(&expected, &given)
        }
        Scheme::Salesloft => {
            let value = required(headers, SALESLOFT_SIGNATURE)?;
            let given = hex_digest(SALESLOFT_SIGNATURE, value, 20)?;
            let mut mac = <Hmac<Sha1>>::new_from_slice(secret.as_bytes()).map_err(bad_key)?;
            mac.update(body);
            equal(&mac.finalize().into_bytes(), &given)
        }
        Scheme::HubspotV1 => {
            let given = hex_digest(HUBSPOT_SIGNATURE, required(headers, HUBSPOT_SIGNATURE)?, 32)?;
            let expected = Sha256::new()
                .chain_update(secret.as_bytes())
                .chain_update(body)
                .finalize();
            equal(&expected, &given)
        }
        Scheme::HubspotV2 => {
            let given = hex_digest(HUBSPOT_SIGNATURE, required(headers, HUBSPOT_SIGNATURE)?, 32)?;
            let expected = Sha256::new()
                .chain_update(secret.as_bytes())
                .chain_update(request.method.as_bytes())
                .chain_update(request.uri.as_bytes())
                .chain_update(body)
                .finalize();
            equal(&expected, &given)
        }
        Scheme::HubspotV3 => hubspot_v3(secret, request, now_ms)?,
        Scheme::Standard => standard(secret, request, now_ms)?,
        Scheme::Aloware => aloware(secret, required(headers, AUTHORIZATION)?)?,
    };
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn hubspot_v3(secret: &str, request: &SignedRequest, now_ms: u64) -> Result<bool, SignatureError> {
    let headers = request.headers.as_slice();
    // Some proxies turn the `+` of a base64 header into a space; a space is
    // never part of base64, so mapping it back cannot accept a forgery.
    let signature = required(headers, HUBSPOT_SIGNATURE_V3)?.replace(' ', "+");
    let given = base64_digest(HUBSPOT_SIGNATURE_V3, &signature)?;
    let timestamp = required(headers, HUBSPOT_TIMESTAMP)?;
    let timestamp_ms = crate::fields::parse_i64(timestamp)
        .ok_or_else(|| malformed(HUBSPOT_TIMESTAMP, "not a number of milliseconds"))?;
    check_window(timestamp_ms, now_ms)?;
    let uri = hubspot_decode_uri(&request.uri);
    let expected = hmac_sha256(
        secret.as_bytes(),
        &[
            request.method.as_bytes(),
            uri.as_bytes(),
            &request.body,
            timestamp.as_bytes(),
        ],
    )?;
    Ok(equal(&expected, &given))
}

/// Decodes exactly the escapes HubSpot's v3 validation guide lists; every
/// other `%XX` stays as sent, because HubSpot signs it that way.
fn hubspot_decode_uri(uri: &str) -> String {
    const DECODED: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find('%') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let after = rest.get(at + 1..).unwrap_or_default();
        let escape = after.get(..2).unwrap_or_default();
        match DECODED
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(escape))
        {
            Some((_, c)) => {
                out.push(*c);
                rest = after.get(2..).unwrap_or_default();
            }
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn standard(secret: &str, request: &SignedRequest, now_ms: u64) -> Result<bool, SignatureError> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = match base64_decode(encoded) {
        Some(key) if !key.is_empty() => key,
        _ => {
            return Err(SignatureError::InvalidSecret(
                "a Standard Webhooks secret must be base64, optionally after `whsec_`".to_string(),
            ));
        }
    };
    let headers = request.headers.as_slice();
    let id = required(headers, WEBHOOK_ID)?;
    let timestamp = required(headers, WEBHOOK_TIMESTAMP)?;
    let signatures = required(headers, WEBHOOK_SIGNATURE)?;

    let timestamp_ms = crate::fields::parse_i64(timestamp)
        .and_then(|seconds| seconds.checked_mul(1000))
        .ok_or_else(|| malformed(WEBHOOK_TIMESTAMP, "not a number of seconds"))?;
    let mut candidates = Vec::new();
    for entry in signatures.split_ascii_whitespace() {
        // Other versions (`v1a` for ed25519, future ones) are for other
        // verifiers; skipping them is what the spec's rotation relies on.
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue;
        };
        if encoded.is_empty() {
            return Err(malformed(WEBHOOK_SIGNATURE, "an empty `v1,` signature"));
        }
        let decoded = base64_decode(encoded)
            .ok_or_else(|| malformed(WEBHOOK_SIGNATURE, "a `v1,` signature that is not base64"))?;
        candidates.push(decoded);
    }
    check_window(timestamp_ms, now_ms)?;

    let expected = hmac_sha256(
        &key,
        &[
            id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            &request.body,
        ],
    )?;
    // Every candidate is compared, so the time taken does not say which
    // position matched.
    let mut matched = subtle::Choice::from(0);
    for candidate in &candidates {
        matched |= expected.as_slice().ct_eq(candidate.as_slice());
    }
    Ok(matched.into())
}

fn aloware(secret: &str, authorization: &str) -> Result<bool, SignatureError> {
    let (kind, credentials) = authorization
        .split_once(|c: char| c.is_ascii_whitespace())
        .map(|(kind, rest)| (kind, rest.trim()))
        .unwrap_or((authorization, ""));
    if credentials.is_empty() {
        return Err(malformed(AUTHORIZATION, "no credentials after the scheme"));
    }
    let given = if kind.eq_ignore_ascii_case("Bearer") {
        credentials.as_bytes().to_vec()
    } else if kind.eq_ignore_ascii_case("Basic") {
        base64_decode(credentials)
            .ok_or_else(|| malformed(AUTHORIZATION, "Basic credentials that are not base64"))?
    } else {
        return Err(malformed(
            AUTHORIZATION,
            "a scheme other than Bearer or Basic",
        ));
    };
    // Comparing digests keeps the comparison constant-time even when the
    // lengths differ, so the secret's length does not leak either.
    Ok(equal(
        &Sha256::digest(secret.as_bytes()),
        &Sha256::digest(&given),
    ))
}

/// `X-Kendo-Signature`: Kendo does not document the encoding, so hex (either
/// case, optionally `sha256=`) and base64 are all read.
fn kendo_signature(value: &str) -> Result<Vec<u8>, SignatureError> {
    let digest = strip_prefix_ignore_case(value, "sha256=").unwrap_or(value);
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex_digest(KENDO_SIGNATURE, digest, 32);
    }
    match base64_decode(digest) {
        Some(bytes) if bytes.len() == 32 => Ok(bytes),
        _ => Err(malformed(
            KENDO_SIGNATURE,
            "not a hex or base64 HMAC-SHA256",
        )),
    }
}

/// Standard base64 that accepts a value with or without its `=` padding
/// (senders differ, and the padding carries no information), exactly as
/// the `base64` crate's standard alphabet with indifferent padding decodes
/// it: `=` only at the end of the last group and not before its third
/// symbol, no group of a single symbol, and no stray bits in the last
/// symbol. Written out because the crate's decoder costs the component
/// about 4 KB; the tests hold this one to the crate.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn symbol(byte: u8) -> Option<u32> {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(value))
    }
    let input = text.as_bytes();
    // The last group (1 to 4 bytes) is the only one that may hold `=`.
    let last_group = match input.len() % 4 {
        0 => input.len().min(4),
        partial => partial,
    };
    let (body, last) = input.split_at(input.len() - last_group);
    let symbols = last.iter().take_while(|&&byte| byte != b'=').count();
    let padded = last.get(symbols..).unwrap_or_default();
    if !padded.iter().all(|&byte| byte == b'=') || (!input.is_empty() && symbols < 2) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let (mut bits, mut count) = (0u32, 0);
    for &byte in body.iter().chain(last.get(..symbols).unwrap_or_default()) {
        bits = (bits << 6) | symbol(byte)?;
        count += 6;
        if count >= 8 {
            count -= 8;
            // The byte just completed.
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    // What is left of the last symbol must be zero.
    (bits == 0).then_some(out)
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| value.get(prefix.len()..))
        .flatten()
}

fn hex_digest(name: &str, value: &str, len: usize) -> Result<Vec<u8>, SignatureError> {
    match hex_decode(value) {
        Some(bytes) if bytes.len() == len => Ok(bytes),
        Some(_) => Err(malformed(name, &format!("expected {} hex digits", len * 2))),
        None => Err(malformed(name, "not hex")),
    }
}

/// Hex in either case, an even number of digits, as `hex::decode` reads it.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn digit(byte: u8) -> Option<u8> {
        // Below 16 by construction.
        (byte as char).to_digit(16).map(|value| value as u8)
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [high, low] => Some(digit(*high)? << 4 | digit(*low)?),
            _ => None,
        })
        .collect()
}

fn base64_digest(name: &str, value: &str) -> Result<Vec<u8>, SignatureError> {
    match base64_decode(value) {
        Some(bytes) if bytes.len() == 32 => Ok(bytes),
        Some(_) => Err(malformed(name, "not a base64 HMAC-SHA256")),
        None => Err(malformed(name, "not base64")),
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, SignatureError> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).map_err(bad_key)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().to_vec())
}

fn equal(expected: &[u8], given: &[u8]) -> bool {
    expected.ct_eq(given).into()
}

fn check_window(timestamp_ms: i64, now_ms: u64) -> Result<(), SignatureError> {
    let distance = i128::from(timestamp_ms).abs_diff(i128::from(now_ms));
    if distance > u128::from(TOLERANCE_MS) {
        return Err(SignatureError::Stale(Staleness {
            timestamp_ms,
            now_ms,
            tolerance_ms: TOLERANCE_MS,
        }));
    }
    Ok(())
}

/// The first header called `name` (any case), trimmed; an empty one is
/// unreadable rather than absent.
fn required<'h>(headers: &'h [Header], name: &str) -> Result<&'h str, SignatureError> {
    let value = headers
        .iter()
        .find(|h| h.name.trim().eq_ignore_ascii_case(name))
        .map(|h| h.value.trim())
        .ok_or_else(|| SignatureError::MissingHeader(name.to_string()))?;
    if value.is_empty() {
        return Err(malformed(name, "empty"));
    }
    Ok(value)
}

fn malformed(name: &str, what: &str) -> SignatureError {
    SignatureError::MalformedHeader(format!("{name}: {what}"))
}

/// HMAC takes keys of any length, so this is never reached; it exists so a
/// library change cannot turn into a trap.
fn bad_key(_: hmac::digest::InvalidLength) -> SignatureError {
    SignatureError::InvalidSecret("the secret cannot be used as an HMAC key".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use proptest::prelude::*;

    /// The decoder `base64_decode` replaced.
    const CRATE: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );

    fn same(text: &str) {
        assert_eq!(base64_decode(text), CRATE.decode(text).ok(), "{text:?}");
    }

    #[test]
    fn padding_and_lengths_are_judged_like_the_crate() {
        for text in [
            "", "=", "==", "Q", "Q=", "Q==", "QQ", "QQ=", "QQ==", "QQ===", "QUI", "QUI=", "QUI==",
            "QUJD", "QUJD=", "QUJDRA", "QUJDRA==", "QQ==QUJD", "QR==", "QUJ=", "Q=Q=", "QUJDR",
            "QUJD\n", " QUJD", "QU JD", "QUJDRA=", "QUJDRA=A", "-_", "+/+/",
        ] {
            same(text);
        }
    }

    #[test]
    fn hex_is_judged_like_the_crate() {
        for text in [
            "", "0", "00", "0a", "0A", "ff", "FfEe", "0g", "g0", "abc", " 0a", "0x0a", "é0",
        ] {
            assert_eq!(hex_decode(text), hex::decode(text).ok(), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn any_hex_text_decodes_like_the_crate(text in "[0-9a-fA-FgxX ]{0,10}") {
            prop_assert_eq!(hex_decode(&text), hex::decode(&text).ok());
        }

        #[test]
        fn any_encoding_decodes_like_the_crate(bytes in prop::collection::vec(any::<u8>(), 0..40), strip in 0usize..3) {
            let encoded = CRATE.encode(&bytes);
            let kept = encoded.len() - strip.min(encoded.bytes().rev().take_while(|b| *b == b'=').count());
            same(&encoded);
            same(&encoded[..kept]);
        }

        #[test]
        fn any_text_decodes_like_the_crate(text in "[A-Za-z0-9+/=_ -]{0,12}") {
            same(&text);
        }
    }
}
