//! `doctor`'s live check of HubSpot write-back: reads (never writes) the
//! group and properties the write-back uses. The write scopes cannot be
//! checked without writing, so the detail names them.

use kendo_bridge::plugin::types::HttpRequest;
use kendo_bridge::source_http::SourceApi;
use kendo_bridge::sources::SourceError;
use kendo_bridge_core::sources::write_back::{
    CREATE_SCOPE, GROUP, PATCH_SCOPE, PROPERTIES, READ_SCOPE, property_problem,
};

use super::DoctorCheck;

/// The properties' check, through the client write-backs are made with.
pub async fn checks(api: &SourceApi) -> Vec<DoctorCheck> {
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut outcome = Ok(());
    match api
        .fetch(&get(format!("/crm/v3/properties/calls/groups/{GROUP}")))
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => missing.push(format!("group `{GROUP}`")),
        Err(e) => outcome = Err(e),
    }
    for spec in &PROPERTIES {
        if outcome.is_err() {
            break;
        }
        match api
            .fetch(&get(format!("/crm/v3/properties/calls/{}", spec.name)))
            .await
        {
            Ok(Some(body)) => wrong.extend(property_problem(spec, &body)),
            Ok(None) => missing.push(format!("`{}`", spec.name)),
            Err(e) => outcome = Err(e),
        }
    }
    if outcome.is_ok() && !wrong.is_empty() {
        outcome = Err(SourceError::WrongProperty(wrong.join("; ")));
    }
    let detail = outcome.map(|()| {
        let writes =
            format!("writing needs `{PATCH_SCOPE}`, which cannot be checked without writing");
        if missing.is_empty() {
            format!("the Kendo properties exist; {writes}")
        } else {
            format!(
                "not yet in HubSpot: {}; the first write-back creates them (needs `{CREATE_SCOPE}`); {writes}",
                missing.join(", ")
            )
        }
    });
    vec![DoctorCheck::needed(
        format!("hubspot write-back properties (read: scope {READ_SCOPE})"),
        detail,
    )]
}

fn get(path: String) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path,
        headers: Vec::new(),
        body: None,
    }
}
