//! One line per decision that matters (stored, sent, retried, paused,
//! dead, refused, ...), to stderr, where Spin collects a component's logs
//! (`spin up` prints them, or writes them under `.spin/logs/`). A line is
//! a JSON object: the event, then its fields. Callers pass ids, states and
//! reasons, never a secret, a signature or a payload.

/// Writes one log line: `{"event": event, field: value, ...}`.
pub fn line(event: &str, fields: &[(&str, &str)]) {
    let mut object = serde_json::Map::new();
    object.insert("event".into(), event.into());
    for (name, value) in fields {
        object.insert((*name).to_string(), (*value).into());
    }
    // A log that cannot be written must not take the request down (as
    // `eprintln!` would, panicking). The line goes out in one write:
    // stderr is unbuffered, so `writeln!` wrote each formatted piece
    // separately (dozens of trips to the host a line), and the lines of
    // concurrent instances were interleaved mid-line in Spin's log.
    use std::io::Write as _;
    let mut line = serde_json::Value::Object(object).to_string();
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}
