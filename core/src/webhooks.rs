//! Which signature scheme a webhook request announces, where a sender has
//! several (HubSpot): every driver reads the headers the same way.

/// HubSpot's request signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubspotSignature {
    /// `X-HubSpot-Signature`, `X-HubSpot-Signature-Version: v1` (CRM webhooks).
    V1,
    /// `X-HubSpot-Signature`, `X-HubSpot-Signature-Version: v2` (workflow actions).
    V2,
    /// `X-HubSpot-Signature-v3` with `X-HubSpot-Request-Timestamp`.
    V3,
}

/// The scheme a request's headers announce (`header` looks one up by its
/// lower-case name). v3 (with its timestamp, so a replay is refused) wins
/// when present; otherwise `X-HubSpot-Signature-Version` names v1 or v2.
/// https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
/// The event a HubSpot delivery is stored under, which names how its calls
/// came: a v3 subscription posts a JSON list of events (`webhook`); a
/// workflow action posts one object (`workflow`). Part of the delivery's
/// id, so every driver must name it alike.
pub fn hubspot_event(body: &[u8]) -> &'static str {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        crate::sources::via::WEBHOOK
    } else {
        crate::sources::via::WORKFLOW
    }
}

pub fn hubspot_signature<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Option<HubspotSignature> {
    if header("x-hubspot-signature-v3").is_some() && header("x-hubspot-request-timestamp").is_some()
    {
        return Some(HubspotSignature::V3);
    }
    header("x-hubspot-signature")?;
    match header("x-hubspot-signature-version")?
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "v1" => Some(HubspotSignature::V1),
        "v2" => Some(HubspotSignature::V2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(headers: &[(&'static str, &'static str)]) -> Option<HubspotSignature> {
        hubspot_signature(|name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
    }

    #[test]
    fn v3_with_its_timestamp_wins_over_an_older_signature() {
        assert_eq!(
            pick(&[
                ("x-hubspot-signature-v3", "a"),
                ("x-hubspot-request-timestamp", "1"),
                ("x-hubspot-signature", "b"),
                ("x-hubspot-signature-version", "v1"),
            ]),
            Some(HubspotSignature::V3)
        );
    }

    #[test]
    fn the_version_header_names_v1_or_v2_and_nothing_else() {
        assert_eq!(
            pick(&[
                ("x-hubspot-signature", "b"),
                ("x-hubspot-signature-version", "V2")
            ]),
            Some(HubspotSignature::V2)
        );
        assert_eq!(
            pick(&[
                ("x-hubspot-signature", "b"),
                ("x-hubspot-signature-version", "v9")
            ]),
            None
        );
        assert_eq!(
            pick(&[("x-hubspot-signature-v3", "a")]),
            None,
            "v3 needs its timestamp"
        );
    }
}
