//! `kendo-bridge verify`: exit 0 and `valid`, exit 1 and the reason, exit 2
//! for usage problems; the secret is never printed.

use crate::support::{assert_exit, fixture, kendo_bridge, run, stderr, stdout, temp_file};
use serde_json::Value;

const SECRET_VAR: &str = "KENDO_BRIDGE_TEST_VERIFY_SECRET";

struct KendoVector {
    secret: String,
    body: String,
    signature: String,
}

fn kendo_vector() -> KendoVector {
    let text = std::fs::read_to_string(fixture("signatures/own-vectors.json"))
        .expect("own vectors readable");
    let vectors: Value = serde_json::from_str(&text).expect("JSON");
    let field = |key: &str| {
        vectors["kendo"][key]
            .as_str()
            .unwrap_or_else(|| panic!("kendo.{key}"))
            .to_owned()
    };
    KendoVector {
        secret: field("secret"),
        body: field("body"),
        signature: field("sha256_prefixed"),
    }
}

fn verify_kendo(body: &str, signature_header: &str, secret: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir, "body.json", body);
    let mut command = kendo_bridge();
    command
        .env(SECRET_VAR, secret)
        .args(["verify", "--scheme", "kendo", "--secret-env", SECRET_VAR])
        .arg("--header")
        .arg(signature_header)
        .arg(&path);
    run(command, None)
}

#[test]
fn a_valid_kendo_signature_prints_valid_and_exits_0() {
    let vector = kendo_vector();
    let output = verify_kendo(
        &vector.body,
        &format!("X-Kendo-Signature: {}", vector.signature),
        &vector.secret,
    );
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "valid\n");
}

#[test]
fn a_body_read_from_stdin_verifies_byte_for_byte() {
    let vector = kendo_vector();
    let mut command = kendo_bridge();
    command
        .env(SECRET_VAR, &vector.secret)
        .args(["verify", "--scheme", "kendo", "--secret-env", SECRET_VAR])
        .arg("--header")
        .arg(format!("x-kendo-signature: {}", vector.signature))
        .arg("-");
    let output = run(command, Some(vector.body.as_bytes()));
    assert_exit(&output, 0);
}

#[test]
fn a_tampered_body_exits_1_with_the_reason_and_never_the_secret() {
    let vector = kendo_vector();
    let tampered = vector.body.replacen("87", "97", 1);
    assert_ne!(tampered, vector.body);
    let output = verify_kendo(
        &tampered,
        &format!("X-Kendo-Signature: {}", vector.signature),
        &vector.secret,
    );
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(message.starts_with("invalid: "), "{message}");
    assert!(message.contains("does not match"), "{message}");
    assert!(
        !message.contains(&vector.secret),
        "the secret leaked: {message}"
    );
}

#[test]
fn a_missing_signature_header_exits_1_naming_it() {
    let vector = kendo_vector();
    let output = verify_kendo(&vector.body, "X-Other: 1", &vector.secret);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("X-Kendo-Signature"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unset_secret_variable_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir, "body.json", "{}");
    let mut command = kendo_bridge();
    command
        .env_remove(SECRET_VAR)
        .args(["verify", "--scheme", "kendo", "--secret-env", SECRET_VAR])
        .args(["--header", "X-Kendo-Signature: 00"])
        .arg(&path);
    let output = run(command, None);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains(SECRET_VAR), "{}", stderr(&output));
}

#[test]
fn a_header_without_a_colon_exits_2() {
    let vector = kendo_vector();
    let output = verify_kendo(&vector.body, "X-Kendo-Signature 00", &vector.secret);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("`:`"), "{}", stderr(&output));
}

#[test]
fn an_unreadable_body_file_exits_2() {
    let mut command = kendo_bridge();
    command
        .env(SECRET_VAR, "s")
        .args(["verify", "--scheme", "kendo", "--secret-env", SECRET_VAR])
        .args(["--header", "X-Kendo-Signature: 00"])
        .arg("/nonexistent/kendo-bridge/body.json");
    let output = run(command, None);
    assert_exit(&output, 2);
}

#[test]
fn an_empty_secret_exits_2_as_a_configuration_problem() {
    let vector = kendo_vector();
    let output = verify_kendo(
        &vector.body,
        &format!("X-Kendo-Signature: {}", vector.signature),
        "",
    );
    assert_exit(&output, 2);
}

#[test]
fn a_stale_hubspot_v3_request_exits_1() {
    let text = std::fs::read_to_string(fixture("signatures/own-vectors.json")).expect("readable");
    let vectors: Value = serde_json::from_str(&text).expect("JSON");
    let vector = &vectors["hubspot_v3_plus_in_signature"];
    let field = |key: &str| {
        vector[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}"))
            .to_owned()
    };
    let timestamp: u64 = field("timestamp").parse().expect("ms");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir, "body.json", &field("body"));
    let header = |name: &str, value: String| format!("{name}: {value}");
    let run_at = |now_ms: u64| {
        let mut command = kendo_bridge();
        command
            .env(SECRET_VAR, field("client_secret"))
            .args([
                "verify",
                "--scheme",
                "hubspot-v3",
                "--secret-env",
                SECRET_VAR,
            ])
            .args(["--method", &field("method"), "--uri", &field("uri")])
            .arg("--header")
            .arg(header("X-HubSpot-Signature-v3", field("signature")))
            .arg("--header")
            .arg(header("X-HubSpot-Request-Timestamp", field("timestamp")))
            .args(["--now-ms", &now_ms.to_string()])
            .arg(&path);
        run(command, None)
    };
    assert_exit(&run_at(timestamp + 1_000), 0);
    let stale = run_at(timestamp + 5 * 60 * 1000 + 1);
    assert_exit(&stale, 1);
    assert!(stderr(&stale).contains("tolerance"), "{}", stderr(&stale));
}
