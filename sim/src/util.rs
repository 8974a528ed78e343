//! Small helpers shared by the simulators: query strings, JSON answers,
//! HMACs and ids.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::Value;

/// Decodes an `application/x-www-form-urlencoded` query string the way Rails
/// and most servers do: `+` is a space and `%XX` a byte. Pairs keep their
/// order; a key without `=` has an empty value. Invalid UTF-8 is replaced.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response with extra headers.
pub(crate) fn json(status: StatusCode, body: &Value, headers: &[(HeaderName, String)]) -> Response {
    let mut resp = (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(name.clone(), v);
        }
    }
    resp
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    mac::<Hmac<sha2::Sha256>>(key, parts)
}

/// HMAC-SHA1 over the concatenation of `parts`.
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    mac::<Hmac<sha1::Sha1>>(key, parts)
}

/// A random version-4 UUID built from 128 random bits.
pub(crate) fn uuid_from(bits: u128) -> String {
    let b = (bits & !(0xF000u128 << 64) | (0x4000u128 << 64)) & !(0xC000u128 << 48)
        | (0x8000u128 << 48);
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The string form of a JSON id that may be a number or a string.
pub(crate) fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_turns_plus_into_space_like_a_form() {
        let pairs = query_pairs(Some(
            "updated_at%5Bgt%5D=2026-04-22T11:30:00+00:00&ids[]=1&x",
        ));
        assert_eq!(
            pairs,
            vec![
                ("updated_at[gt]".into(), "2026-04-22T11:30:00 00:00".into()),
                ("ids[]".into(), "1".into()),
                ("x".into(), String::new()),
            ]
        );
    }

    #[test]
    fn uuids_carry_version_four_and_the_rfc_variant() {
        let u = uuid_from(u128::MAX);
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        let z = uuid_from(0);
        assert_eq!(z, "00000000-0000-4000-8000-000000000000");
    }
}
