//! What a source's answer tells the operator when it is not the page or
//! record asked for: the setting to check, and a short excerpt of the body.

use crate::plugin::types::HttpRequest;
use crate::sources::SourceError;

/// A listing the poller needs answered 404 at `base` + the request's path:
/// the listing is not at this URL, which is a configuration error (usually
/// `<name>.api_url`), not "no calls".
pub fn list_not_found(name: &'static str, base: &str, request: &HttpRequest) -> SourceError {
    let url = format!("{base}{}", request.path);
    let hint = match doubled_segment(base, &request.path) {
        Some(seg) => format!(
            "the URL repeats `/{seg}`: `{name}.api_url` ({base}) must not end with `/{seg}`"
        ),
        None => format!("check `{name}.api_url` ({base})"),
    };
    SourceError::NotFound {
        source_name: name,
        method: request.method.clone(),
        url,
        hint,
    }
}

/// The path segment that ends the base and also starts the path (`v2` for
/// `https://api.salesloft.com/v2` + `/v2/activities/calls`).
fn doubled_segment(base: &str, path: &str) -> Option<String> {
    let last = base.trim_end_matches('/').rsplit('/').next()?;
    let first = path.trim_start_matches('/').split(['/', '?']).next()?;
    (!last.is_empty() && last == first && !last.contains(':') && !last.contains('.'))
        .then(|| last.to_string())
}

/// The start of an answer's body, for an error message.
pub fn excerpt(body: &str) -> String {
    let trimmed: String = body.chars().take(300).collect();
    if trimmed.len() < body.len() {
        format!("{trimmed}...")
    } else {
        trimmed
    }
}

/// A numeric header (seconds, points), rounded up.
pub fn header_number(headers: &reqwest::header::HeaderMap, name: &str) -> Option<i64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .map(|v| v.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_ending_in_the_paths_first_segment_is_named() {
        assert_eq!(
            doubled_segment("https://api.salesloft.com/v2/", "/v2/activities/calls"),
            Some("v2".into())
        );
        assert_eq!(
            doubled_segment("https://api.salesloft.com", "/v2/activities/calls"),
            None
        );
        assert_eq!(doubled_segment("http://127.0.0.1:9", "/127.0.0.1:9"), None);
    }

    #[test]
    fn a_long_body_is_cut_and_marked() {
        assert_eq!(excerpt("short"), "short");
        let long = "x".repeat(400);
        assert_eq!(excerpt(&long), format!("{}...", "x".repeat(300)));
    }
}
