//! A webhook whose signature does not verify is answered 401 and leaves no
//! trace but a counter: nothing in the inbox, nothing in the ledger. One
//! test per sender's scheme (Aloware's and Kendo's are scenarios of the
//! conformance suite, run on both drivers); each ends by sending the genuine request, to
//! show the refusal was the signature's doing.

use std::time::Duration;

use crate::support::{Running, client, hmac_sha1_hex, hmac_sha256_base64, now_ms, sql_count};
use kendo_bridge::demo::{HUBSPOT_CLIENT_SECRET, SALESLOFT_CALLBACK_TOKEN, StageOptions};
use kendo_bridge::store::counter;
use kendo_bridge_sim::Dataset;
use serde_json::{Value, json};

/// Webhooks only: with polling off, nothing but a delivery can touch the
/// ledger.
async fn webhooks_only() -> Running {
    let options = StageOptions {
        poll_interval: Duration::ZERO,
        ..StageOptions::default()
    };
    Running::start(Dataset::demo(7), options).await
}

/// The refusal left nothing behind but the counter.
fn nothing_stored(bridge: &Running, source: &str) {
    assert_eq!(
        bridge.counter(source, counter::BAD_SIGNATURE),
        1,
        "the refusal is counted"
    );
    assert_eq!(
        bridge.counter(source, counter::WEBHOOKS),
        0,
        "no delivery was stored"
    );
    assert_eq!(
        sql_count(&bridge.db(), "SELECT COUNT(*) FROM inbox"),
        0,
        "the inbox is empty"
    );
    assert_eq!(bridge.ledger(), vec![], "the ledger is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesloft_delivery_with_a_tampered_body_is_refused_and_not_stored() {
    let bridge = webhooks_only().await;
    let stage = &bridge.stage;
    let call = &stage.dataset.salesloft_calls[0];
    let body = stage
        .sims
        .salesloft
        .call_json(call.id)
        .expect("the call")
        .to_string();
    let signature = hmac_sha1_hex(SALESLOFT_CALLBACK_TOKEN, body.as_bytes());
    let mut changed: Value = serde_json::from_str(&body).expect("a JSON call");
    changed["duration"] = json!(9_999);
    let tampered = changed.to_string();
    let post = |body: String| {
        client()
            .post(stage.webhook_url("salesloft"))
            .header("Content-Type", "application/json")
            .header("x-salesloft-event", "call_updated")
            .header("x-salesloft-signature", &signature)
            .body(body)
            .send()
    };

    let refused = post(tampered).await.expect("the bridge answers");

    assert_eq!(refused.status().as_u16(), 401);
    nothing_stored(&bridge, "salesloft");
    let genuine = post(body).await.expect("the bridge answers");
    assert_eq!(
        genuine.status().as_u16(),
        200,
        "the untampered body verifies"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_v3_delivery_signed_ten_minutes_ago_is_refused_and_not_stored() {
    let bridge = webhooks_only().await;
    let stage = &bridge.stage;
    let url = stage.webhook_url("hubspot");
    let id = stage.dataset.hubspot_calls[0].id;
    let body = json!([{
        "eventId": 1_000_001, "subscriptionId": 2_345_678, "portalId": 62_515, "appId": 1_160_452,
        "occurredAt": now_ms(), "subscriptionType": "object.creation", "attemptNumber": 0,
        "objectId": id, "objectTypeId": "0-48", "changeSource": "CRM_UI", "changeFlag": "CREATED",
    }])
    .to_string();
    let post = |at_ms: i64| {
        let timestamp = at_ms.to_string();
        let signature = hmac_sha256_base64(
            HUBSPOT_CLIENT_SECRET,
            &[
                b"POST",
                url.as_bytes(),
                body.as_bytes(),
                timestamp.as_bytes(),
            ],
        );
        client()
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-HubSpot-Signature-v3", signature)
            .header("X-HubSpot-Request-Timestamp", timestamp)
            .body(body.clone())
            .send()
    };

    let stale = post(now_ms() - 10 * 60_000)
        .await
        .expect("the bridge answers");

    assert_eq!(stale.status().as_u16(), 401);
    let reason: Value = stale.json().await.expect("a JSON error");
    assert!(
        reason["error"].as_str().is_some_and(|e| e.contains("old")),
        "the answer says the request is too old: {reason}"
    );
    nothing_stored(&bridge, "hubspot");
    let fresh = post(now_ms()).await.expect("the bridge answers");
    assert_eq!(
        fresh.status().as_u16(),
        200,
        "the same request signed now verifies"
    );
    bridge.stop().await;
}
