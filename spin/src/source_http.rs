//! The sources' HTTP port on Spin: a request the plugin (or the core's
//! write-back) planned, made against HubSpot's or Salesloft's API with the
//! token variable. A 2xx gives its body, a 404 `None` (deleted), anything
//! else a [`Failed`], passing or lasting as the core's
//! [`kendo_bridge_core::sources::passing`] says.

use spin_sdk::http::{Method, Request, Response};

use crate::Failed;
use crate::plugin::kendo::bridge::types::HttpRequest;
use crate::variable;

/// A request against HubSpot's API (`hubspot_token`).
pub(crate) async fn hubspot(planned: &HttpRequest) -> Result<Option<String>, Failed> {
    let token = variable("hubspot_token")
        .ok_or_else(|| Failed::lasting("variable hubspot_token is not set".into()))?;
    let method = match planned.method.as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PATCH" => Method::Patch,
        other => {
            return Err(Failed::lasting(format!(
                "the plugin planned HTTP method {other}"
            )));
        }
    };
    let base = crate::policy::hubspot_api_url();
    let response = send("HubSpot", &base, &token, method, planned).await?;
    match *response.status() {
        200..=299 => Ok(Some(body(&response))),
        404 => Ok(None),
        status => Err(failed(
            planned,
            status,
            format!(
                "HubSpot answered {status} to {} {}{}",
                planned.method,
                planned.path,
                if matches!(status, 401 | 403) {
                    " (check the hubspot_token variable and its scopes)".to_string()
                } else {
                    // HubSpot's error body says what was wrong (a deleted
                    // property shows as PROPERTY_DOESNT_EXIST).
                    let body: String = body(&response).chars().take(300).collect();
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(": {body}")
                    }
                }
            ),
        )),
    }
}

/// A request against Salesloft's API (`salesloft_api_key`), with the
/// team's cost points left as the answer says.
pub(crate) async fn salesloft(
    planned: &HttpRequest,
) -> Result<(Option<String>, Option<u64>), Failed> {
    let key = variable("salesloft_api_key")
        .ok_or_else(|| Failed::lasting("variable salesloft_api_key is not set".into()))?;
    if planned.method != "GET" {
        return Err(Failed::lasting(format!(
            "the plugin planned HTTP method {} for Salesloft",
            planned.method
        )));
    }
    let base = crate::policy::salesloft_api_url();
    let response = send("Salesloft", &base, &key, Method::Get, planned).await?;
    let remaining = response
        .header("x-ratelimit-remaining-minute")
        .and_then(|v| v.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match *response.status() {
        200..=299 => Ok((Some(body(&response)), remaining)),
        404 => Ok((None, remaining)),
        status => Err(failed(
            planned,
            status,
            format!(
                "Salesloft answered {status} to {} {}{}",
                planned.method,
                planned.path,
                match status {
                    401 | 403 => " (check the salesloft_api_key variable and its scopes)",
                    429 => " (the team's cost points are spent; the next tick goes on)",
                    _ => "",
                }
            ),
        )),
    }
}

/// Sends `planned` to `base` with the bearer `token`; a request that got
/// no answer is worth trying again.
async fn send(
    source: &str,
    base: &str,
    token: &str,
    method: Method,
    planned: &HttpRequest,
) -> Result<Response, Failed> {
    let mut builder = Request::builder();
    builder
        .method(method)
        .uri(format!("{}{}", base.trim_end_matches('/'), planned.path))
        .header("authorization", format!("Bearer {token}"));
    for h in &planned.headers {
        builder.header(h.name.as_str(), h.value.as_str());
    }
    let request = builder
        .body(planned.body.clone().unwrap_or_default())
        .build();
    spin_sdk::http::send(request).await.map_err(|e| Failed {
        message: format!("{source} {} {}: {e}", planned.method, planned.path),
        passing: true,
        status: None,
        method: planned.method.clone(),
        path: planned.path.clone(),
    })
}

fn body(response: &Response) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

/// A source's answer other than a 2xx or a 404.
fn failed(planned: &HttpRequest, status: u16, message: String) -> Failed {
    Failed {
        message,
        passing: kendo_bridge_core::sources::passing(status),
        status: Some(status),
        method: planned.method.clone(),
        path: planned.path.clone(),
    }
}
