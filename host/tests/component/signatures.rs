//! Every signature scheme, verified through the release component inside
//! wasmtime against every vector in `tests/fixtures/signatures/`, and
//! tampered copies of each valid vector refused.

use crate::support::{files_under, instance, read_fixture};
use kendo_bridge::plugin::{
    Instance,
    signatures::{Scheme, SignatureError, SignedRequest},
    types::Header,
};
use serde_json::Value;

const DIR: &str = "signatures";

#[derive(Debug, Clone)]
struct Vector {
    /// `<file>: <vector name>`, for every assertion message.
    label: String,
    scheme: Scheme,
    secret: String,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    now_ms: u64,
    valid: bool,
    /// The header that carries the signature.
    signature_header: &'static str,
}

impl Vector {
    fn verify(&self, instance: &mut Instance) -> Result<(), SignatureError> {
        let request = SignedRequest {
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            body: self.body.clone(),
        };
        instance
            .call(|bridge, store| {
                bridge.kendo_bridge_signatures().call_verify(
                    store,
                    self.scheme,
                    &self.secret,
                    &request,
                    self.now_ms,
                )
            })
            .unwrap_or_else(|error| panic!("{}: verify trapped: {error}", self.label))
    }

    /// Whether the scheme signs the body (Aloware's shared secret does not).
    fn signs_body(&self) -> bool {
        self.scheme != Scheme::Aloware
    }

    fn with_body_changed(&self) -> Vector {
        let mut changed = self.clone();
        match changed.body.first_mut() {
            Some(first) => *first ^= 0x01,
            None => changed.body.push(b' '),
        }
        changed.label.push_str(" (body changed)");
        changed
    }

    fn with_secret_changed(&self) -> Vector {
        let mut changed = self.clone();
        let at = if changed.secret.starts_with("whsec_") {
            "whsec_".len()
        } else {
            0
        };
        changed.secret = change_char_at(&changed.secret, at);
        changed.label.push_str(" (secret changed)");
        changed
    }

    /// The first character of every signature in the signature header
    /// changed: the first character is never base64 padding, so the change
    /// always changes the signature's bytes.
    fn with_signature_changed(&self) -> Vector {
        let mut changed = self.clone();
        let header = changed
            .headers
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(self.signature_header))
            .unwrap_or_else(|| panic!("{}: no {} header", self.label, self.signature_header));
        header.1 = match self.scheme {
            Scheme::Standard => header
                .1
                .split(' ')
                .map(|entry| match entry.split_once(',') {
                    Some((version, signature)) => {
                        format!("{version},{}", change_char_at(signature, 0))
                    }
                    None => entry.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Scheme::Aloware => match header.1.split_once(' ') {
                Some((kind, credential)) => format!("{kind} {}", change_char_at(credential, 0)),
                None => change_char_at(&header.1, 0),
            },
            _ => {
                let at = if header.1.starts_with("sha256=") {
                    "sha256=".len()
                } else {
                    0
                };
                change_char_at(&header.1, at)
            }
        };
        changed.label.push_str(" (signature changed)");
        changed
    }
}

/// Swaps one character for another of the hex and base64 alphabets, so the
/// value stays well-formed and only its meaning changes.
fn change_char_at(value: &str, at: usize) -> String {
    value
        .chars()
        .enumerate()
        .map(|(index, c)| match (index == at, c) {
            (false, c) => c,
            (true, '1') => '2',
            (true, _) => '1',
        })
        .collect()
}

fn text(value: &Value, key: &str, label: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{label}: `{key}` is not a string in {value}"))
        .to_owned()
}

fn millis(text: &str, label: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|error| panic!("{label}: timestamp {text:?}: {error}"))
}

fn base(label: String, scheme: Scheme, secret: String, body: &str, header: &'static str) -> Vector {
    Vector {
        label,
        scheme,
        secret,
        method: "POST".to_owned(),
        uri: "https://bridge.example.com/webhooks".to_owned(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
        // Vectors without a timestamp do not depend on the clock.
        now_ms: 1_776_871_800_000,
        valid: true,
        signature_header: header,
    }
}

/// `hubspot-signature-test-vectors.derived.json`: v1, v2 and v3 vectors
/// under one client secret.
fn hubspot_vectors(file: &str, json: &Value) -> Vec<Vector> {
    let secret = text(json, "client_secret", file);
    let vectors = json["vectors"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no `vectors` list"));
    vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let version = text(vector, "version", file);
            let label = format!("{file}: vectors[{index}] ({version})");
            let (scheme, header) = match version.as_str() {
                "v1" => (Scheme::HubspotV1, "X-HubSpot-Signature"),
                "v2" => (Scheme::HubspotV2, "X-HubSpot-Signature"),
                "v3" => (Scheme::HubspotV3, "X-HubSpot-Signature-v3"),
                other => panic!("{label}: unknown version {other:?}: teach this loader"),
            };
            let mut out = base(
                label.clone(),
                scheme,
                secret.clone(),
                &text(vector, "body", &label),
                header,
            );
            if let Some(method) = vector["method"].as_str() {
                out.method = method.to_owned();
            }
            if let Some(uri) = vector["uri"].as_str() {
                out.uri = uri.to_owned();
            }
            out.headers
                .push((header.to_owned(), text(vector, "expected", &label)));
            if scheme == Scheme::HubspotV3 {
                let timestamp = text(vector, "timestamp", &label);
                // The published vector is from 1970: the clock is pinned to it.
                out.now_ms = millis(&timestamp, &label);
                out.headers
                    .push(("X-HubSpot-Request-Timestamp".to_owned(), timestamp));
            }
            out
        })
        .collect()
}

/// `standard-webhooks-test-vectors.derived.json`.
fn standard_vectors(file: &str, json: &Value) -> Vec<Vector> {
    let vectors = json["vectors"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no `vectors` list"));
    vectors
        .iter()
        .map(|vector| {
            let label = format!("{file}: {}", text(vector, "name", file));
            let signature = vector["expected_webhook-signature"]
                .as_str()
                .or_else(|| vector["webhook-signature"].as_str())
                .unwrap_or_else(|| panic!("{label}: no signature"));
            let timestamp = text(vector, "webhook-timestamp", &label);
            let mut out = base(
                label.clone(),
                Scheme::Standard,
                text(vector, "secret", &label),
                &text(vector, "body", &label),
                "webhook-signature",
            );
            out.headers = vec![
                ("webhook-id".to_owned(), text(vector, "webhook-id", &label)),
                ("webhook-timestamp".to_owned(), timestamp.clone()),
                ("webhook-signature".to_owned(), signature.to_owned()),
            ];
            // Published in 2021: the clock is pinned to the vector.
            out.now_ms = millis(&timestamp, &label) * 1000;
            out.valid = vector["valid"]
                .as_bool()
                .unwrap_or_else(|| panic!("{label}: no `valid` flag"));
            out
        })
        .collect()
}

/// `own-vectors.json`: vectors computed with Python's `hmac`, one section
/// per scheme.
fn own_vectors(file: &str, json: &Value) -> Vec<Vector> {
    let sections = json
        .as_object()
        .unwrap_or_else(|| panic!("{file}: not an object"));
    let mut out = Vec::new();
    for (section, value) in sections {
        let label = format!("{file}: {section}");
        match section.as_str() {
            note if note.starts_with('_') => {}
            "kendo" => {
                let secret = text(value, "secret", &label);
                let body = text(value, "body", &label);
                let fields = value
                    .as_object()
                    .unwrap_or_else(|| panic!("{label}: not an object"));
                for encoding in fields.keys() {
                    if matches!(encoding.as_str(), "secret" | "body") || encoding.starts_with('_') {
                        continue;
                    }
                    let mut vector = base(
                        format!("{label}.{encoding}"),
                        Scheme::Kendo,
                        secret.clone(),
                        &body,
                        "X-Kendo-Signature",
                    );
                    vector.headers.push((
                        "X-Kendo-Signature".to_owned(),
                        text(value, encoding, &label),
                    ));
                    out.push(vector);
                }
            }
            "salesloft" => {
                let mut vector = base(
                    label.clone(),
                    Scheme::Salesloft,
                    text(value, "callback_token", &label),
                    &text(value, "body", &label),
                    "x-salesloft-signature",
                );
                vector.headers.push((
                    "x-salesloft-signature".to_owned(),
                    text(value, "signature", &label),
                ));
                out.push(vector);
            }
            hubspot if hubspot.starts_with("hubspot_v3") => {
                let timestamp = text(value, "timestamp", &label);
                let mut vector = base(
                    label.clone(),
                    Scheme::HubspotV3,
                    text(value, "client_secret", &label),
                    &text(value, "body", &label),
                    "X-HubSpot-Signature-v3",
                );
                vector.method = text(value, "method", &label);
                vector.uri = text(value, "uri", &label);
                vector.now_ms = millis(&timestamp, &label);
                vector.headers = vec![
                    (
                        "X-HubSpot-Signature-v3".to_owned(),
                        text(value, "signature", &label),
                    ),
                    ("X-HubSpot-Request-Timestamp".to_owned(), timestamp),
                ];
                out.push(vector);
            }
            "aloware" => {
                let body = text(value, "body", &label);
                for kind in ["bearer", "basic"] {
                    let credentials = &value[kind];
                    let kind_label = format!("{label}.{kind}");
                    let mut vector = base(
                        kind_label.clone(),
                        Scheme::Aloware,
                        text(credentials, "secret", &kind_label),
                        &body,
                        "Authorization",
                    );
                    vector.headers.push((
                        "Authorization".to_owned(),
                        text(credentials, "authorization", &kind_label),
                    ));
                    out.push(vector);
                }
            }
            other => panic!("{file}: unknown section {other:?}: teach this loader to read it"),
        }
    }
    out
}

/// Every vector of every file in `tests/fixtures/signatures/`. A missing
/// directory, or a file this loader does not know, fails the test: nothing
/// is skipped silently.
fn all_vectors() -> Vec<Vector> {
    let files = files_under(DIR);
    assert!(!files.is_empty(), "tests/fixtures/{DIR}/ is empty");
    let mut vectors = Vec::new();
    for file in &files {
        let name = file.rsplit('/').next().unwrap_or(file);
        if name.ends_with(".md") {
            continue; // provenance notes
        }
        let json: Value = serde_json::from_str(&read_fixture(file))
            .unwrap_or_else(|error| panic!("{file}: {error}"));
        let loaded = match name {
            "hubspot-signature-test-vectors.derived.json" => hubspot_vectors(file, &json),
            "standard-webhooks-test-vectors.derived.json" => standard_vectors(file, &json),
            "own-vectors.json" => own_vectors(file, &json),
            other => panic!("{file}: unknown vector file {other}: teach this loader to read it"),
        };
        assert!(!loaded.is_empty(), "{file}: no vectors");
        vectors.extend(loaded);
    }
    vectors
}

fn valid_vectors() -> Vec<Vector> {
    all_vectors().into_iter().filter(|v| v.valid).collect()
}

#[test]
fn every_scheme_has_a_vector() {
    let vectors = all_vectors();
    for scheme in [
        Scheme::Kendo,
        Scheme::Salesloft,
        Scheme::HubspotV1,
        Scheme::HubspotV2,
        Scheme::HubspotV3,
        Scheme::Standard,
        Scheme::Aloware,
    ] {
        assert!(
            vectors.iter().any(|v| v.scheme == scheme && v.valid),
            "no valid vector for {scheme:?} in tests/fixtures/{DIR}/"
        );
    }
}

#[test]
fn every_valid_vector_verifies() {
    let mut instance = instance();
    for vector in valid_vectors() {
        if let Err(error) = vector.verify(&mut instance) {
            panic!("{}: refused: {}", vector.label, error.explain());
        }
    }
}

#[test]
fn every_invalid_vector_is_refused() {
    let mut instance = instance();
    let invalid: Vec<Vector> = all_vectors().into_iter().filter(|v| !v.valid).collect();
    assert!(!invalid.is_empty(), "the fixtures carry no invalid vector");
    for vector in invalid {
        assert!(
            vector.verify(&mut instance).is_err(),
            "{}: accepted, but the vector says it is invalid",
            vector.label
        );
    }
}

#[test]
fn a_one_byte_change_to_the_body_is_a_mismatch() {
    let mut instance = instance();
    for vector in valid_vectors() {
        let changed = vector.with_body_changed();
        if vector.signs_body() {
            assert!(
                matches!(changed.verify(&mut instance), Err(SignatureError::Mismatch)),
                "{}: not refused as a mismatch",
                changed.label
            );
        } else {
            // Aloware authenticates the sender with a shared secret and
            // does not sign the body: a changed body still passes.
            assert!(
                changed.verify(&mut instance).is_ok(),
                "{}: the Aloware scheme does not cover the body",
                changed.label
            );
        }
    }
}

#[test]
fn a_one_character_change_to_the_secret_is_refused() {
    let mut instance = instance();
    for vector in valid_vectors() {
        let changed = vector.with_secret_changed();
        assert!(
            matches!(changed.verify(&mut instance), Err(SignatureError::Mismatch)),
            "{}: not refused as a mismatch",
            changed.label
        );
    }
}

#[test]
fn a_one_character_change_to_the_signature_is_refused() {
    let mut instance = instance();
    for vector in valid_vectors() {
        let changed = vector.with_signature_changed();
        assert!(
            changed.verify(&mut instance).is_err(),
            "{}: accepted",
            changed.label
        );
    }
}
