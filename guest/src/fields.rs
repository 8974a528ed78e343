//! Reading source JSON, and writing the few values that go back out to a
//! source (paths and query strings).
//!
//! Every accessor answers with an [`InputError`] that names the JSON path of
//! the offending value (`data[3].recordings[0].url`), so an operator can find
//! it in the record. Paths are built lazily from a chain of borrowed segments:
//! reading a 900-sentence transcript allocates no path strings unless
//! something is wrong.
//!
//! Sources are loose about types: ids and counts arrive as integers or as
//! strings, flags as booleans, `"true"` or `1`. The accessors accept those
//! spellings and refuse the rest.

use serde_json::Value;

use crate::types::{FieldProblem, HttpRequest, InputError, SizeProblem};

/// The largest body the plugin reads. A call record, a user or a page of
/// sentences is kilobytes; this only stops a runaway input from exhausting
/// the component's memory.
pub(crate) const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

static NULL: Value = Value::Null;

/// Parses one input. `input` names it in the error when it is not the main
/// record (`user`, `sentences[2]`, ...).
pub(crate) fn parse(body: &str, input: &str) -> Result<Value, InputError> {
    if body.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge(SizeProblem {
            size: u64::try_from(body.len()).unwrap_or(u64::MAX),
            limit: MAX_INPUT_BYTES as u64,
        }));
    }
    serde_json::from_str(body).map_err(|error| {
        InputError::InvalidJson(if input.is_empty() {
            error.to_string()
        } else {
            format!("{input}: {error}")
        })
    })
}

/// Serialises a value read from an input, to hand it back to the host.
pub(crate) fn to_json(value: &Value) -> Result<String, InputError> {
    serde_json::to_string(value).map_err(|error| InputError::InvalidJson(error.to_string()))
}

#[derive(Clone, Copy)]
enum Segment<'p> {
    Root(&'p str),
    Key(&'p str),
    Index(usize),
}

/// Where a value sits, as a chain back to the root.
#[derive(Clone, Copy)]
struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    segment: Segment<'p>,
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = Some(self);
        while let Some(path) = at {
            segments.push(path.segment);
            at = path.parent;
        }
        let mut out = String::new();
        let mut after_root = false;
        for segment in segments.iter().rev() {
            match segment {
                Segment::Root(label) => {
                    out.push_str(label);
                    after_root = !label.is_empty();
                }
                Segment::Key(key) => {
                    if after_root {
                        out.push(':');
                    } else if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                    after_root = false;
                }
                Segment::Index(index) => {
                    if after_root {
                        out.push(':');
                    }
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                    after_root = false;
                }
            }
        }
        if out.is_empty() {
            out.push('$');
        }
        out
    }
}

/// A JSON value together with its path.
///
/// An absent member reads as `null`, so chains like
/// `call.get("user")?.get("id")?.id()?` work on sparse records, while a
/// member of the wrong type is an error naming its path.
#[derive(Clone, Copy)]
pub(crate) struct Node<'v, 'p> {
    value: &'v Value,
    path: Path<'p>,
}

impl std::fmt::Debug for Node<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {}", self.path(), self.value)
    }
}

// The accessors are called from hundreds of places; kept out of line, each
// call site is a call instead of a copy of the lookup and its error paths,
// which keeps the component small at a cost of nanoseconds.
impl<'v, 'p> Node<'v, 'p> {
    /// The root of an input; `label` prefixes every path (`user:data.email`),
    /// empty for the main record.
    pub(crate) fn root(value: &'v Value, label: &'p str) -> Self {
        Node {
            value,
            path: Path {
                parent: None,
                segment: Segment::Root(label),
            },
        }
    }

    pub(crate) fn value(&self) -> &'v Value {
        self.value
    }

    #[inline(never)]
    pub(crate) fn path(&self) -> String {
        self.path.render()
    }

    pub(crate) fn is_null(&self) -> bool {
        self.value.is_null()
    }

    pub(crate) fn is_object(&self) -> bool {
        self.value.is_object()
    }

    /// A member of this object, `null` when absent. An error when this value
    /// is neither an object nor `null`.
    #[inline(never)]
    pub(crate) fn get<'s>(&'s self, key: &'s str) -> Result<Node<'v, 's>, InputError> {
        let value = match self.value {
            Value::Object(members) => members.get(key).unwrap_or(&NULL),
            Value::Null => &NULL,
            _ => return Err(self.wrong_type("an object")),
        };
        Ok(Node {
            value,
            path: Path {
                parent: Some(&self.path),
                segment: Segment::Key(key),
            },
        })
    }

    /// This value, or `missing-field` when it is absent or `null`.
    #[inline(never)]
    pub(crate) fn required(self) -> Result<Self, InputError> {
        if self.is_null() {
            Err(InputError::MissingField(self.path()))
        } else {
            Ok(self)
        }
    }

    /// This value when it is an object, `None` when `null`.
    #[inline(never)]
    pub(crate) fn object(self) -> Result<Option<Self>, InputError> {
        match self.value {
            Value::Object(_) => Ok(Some(self)),
            Value::Null => Ok(None),
            _ => Err(self.wrong_type("an object")),
        }
    }

    /// The elements of this array; none when `null`.
    pub(crate) fn items<'s>(
        &'s self,
    ) -> Result<impl Iterator<Item = Node<'v, 's>> + 's, InputError> {
        let elements: &'v [Value] = match self.value {
            Value::Array(elements) => elements,
            Value::Null => &[],
            _ => return Err(self.wrong_type("a list")),
        };
        Ok(elements.iter().enumerate().map(move |(index, value)| Node {
            value,
            path: Path {
                parent: Some(&self.path),
                segment: Segment::Index(index),
            },
        }))
    }

    /// A string, as is.
    #[inline(never)]
    pub(crate) fn str(&self) -> Result<Option<&'v str>, InputError> {
        match self.value {
            Value::String(text) => Ok(Some(text)),
            Value::Null => Ok(None),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// A string with surrounding white space removed; an empty one reads as
    /// absent (sources send `""` for "not set").
    #[inline(never)]
    pub(crate) fn text(&self) -> Result<Option<&'v str>, InputError> {
        Ok(self.str()?.map(str::trim).filter(|text| !text.is_empty()))
    }

    /// [`Self::text`], also accepting a number or a boolean written as one
    /// (HubSpot's properties are strings, but a workflow may post them typed).
    #[inline(never)]
    pub(crate) fn scalar_text(&self) -> Result<Option<String>, InputError> {
        match self.value {
            Value::Number(number) => Ok(Some(number.to_string())),
            Value::Bool(flag) => Ok(Some(flag.to_string())),
            Value::String(_) | Value::Null => Ok(self.text()?.map(str::to_owned)),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// An identifier sent as an integer or a string.
    #[inline(never)]
    pub(crate) fn id(&self) -> Result<Option<String>, InputError> {
        match self.value {
            Value::Number(number) if number.is_i64() || number.is_u64() => {
                Ok(Some(number.to_string()))
            }
            Value::String(_) | Value::Null => Ok(self.text()?.map(str::to_owned)),
            _ => Err(self.wrong_type("an id (an integer or a string)")),
        }
    }

    /// A number sent as a JSON number or as a numeric string.
    #[inline(never)]
    pub(crate) fn number(&self) -> Result<Option<f64>, InputError> {
        match self.value {
            Value::Number(number) => match number.as_f64() {
                Some(value) if value.is_finite() => Ok(Some(value)),
                _ => Err(self.invalid(format!("{number} is not a usable number"))),
            },
            Value::String(_) | Value::Null => match self.text()? {
                None => Ok(None),
                Some(text) => match text.parse::<f64>() {
                    Ok(value) if value.is_finite() => Ok(Some(value)),
                    _ => Err(self.invalid(format!("\"{text}\" is not a number"))),
                },
            },
            _ => Err(self.wrong_type("a number")),
        }
    }

    /// A whole count (an integer, or a numeric string), never negative.
    #[inline(never)]
    pub(crate) fn count(&self) -> Result<Option<u64>, InputError> {
        let Some(value) = self.number()? else {
            return Ok(None);
        };
        if value < 0.0 {
            return Err(self.invalid(format!("{} is negative", self.value)));
        }
        if value.fract() != 0.0 || value >= u64::MAX as f64 {
            return Err(self.invalid(format!("{} is not a whole number", self.value)));
        }
        // Exact: a non-negative whole f64 below 2^64.
        Ok(Some(value as u64))
    }

    /// A length in seconds, rounded to whole seconds; `scale` divides first
    /// (1000 for milliseconds).
    #[inline(never)]
    pub(crate) fn seconds(&self, scale: f64) -> Result<Option<u32>, InputError> {
        let Some(value) = self.number()? else {
            return Ok(None);
        };
        if value < 0.0 {
            return Err(self.invalid(format!("a duration cannot be negative ({})", self.value)));
        }
        let seconds = (value / scale).round();
        if seconds > f64::from(u32::MAX) {
            return Err(self.invalid(format!("{} is too long for a call duration", self.value)));
        }
        // In range and whole: the conversion is exact.
        Ok(Some(seconds as u32))
    }

    /// A flag sent as a boolean, `"true"`/`"false"`, `1`/`0` or `"1"`/`"0"`.
    #[inline(never)]
    pub(crate) fn flag(&self) -> Result<Option<bool>, InputError> {
        match self.value {
            Value::Bool(flag) => Ok(Some(*flag)),
            Value::Null => Ok(None),
            Value::Number(number) => match number.as_u64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(self.invalid(format!("{number} is not a true/false flag"))),
            },
            Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(self.invalid(format!("\"{text}\" is not a true/false flag"))),
            },
            _ => Err(self.wrong_type("a true/false flag")),
        }
    }

    #[inline(never)]
    pub(crate) fn wrong_type(&self, expected: &str) -> InputError {
        InputError::WrongType(FieldProblem {
            field: self.path(),
            detail: format!("expected {expected}, found {}", kind(self.value)),
        })
    }

    #[inline(never)]
    pub(crate) fn invalid(&self, detail: String) -> InputError {
        InputError::InvalidValue(FieldProblem {
            field: self.path(),
            detail,
        })
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Percent-encodes a path segment or a query value: everything but RFC
/// 3986's unreserved characters.
pub(crate) fn percent_encode(raw: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// A `GET` for `path` (already encoded).
pub(crate) fn get_request(path: String) -> HttpRequest {
    HttpRequest {
        method: "GET".to_owned(),
        path,
        headers: Vec::new(),
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(error: InputError) -> String {
        match error {
            InputError::MissingField(field) => field,
            InputError::WrongType(problem) | InputError::InvalidValue(problem) => problem.field,
            other => panic!("no field in {other:?}"),
        }
    }

    #[test]
    fn paths_name_keys_and_indexes_from_the_root() {
        let value = json!({"data": [{"recordings": [{"url": 5}]}]});
        let root = Node::root(&value, "");
        let data = root.get("data").unwrap();
        let record = data.items().unwrap().next().unwrap();
        let recordings = record.get("recordings").unwrap();
        let recording = recordings.items().unwrap().next().unwrap();
        let url = recording.get("url").unwrap();
        assert_eq!(
            field_of(url.str().unwrap_err()),
            "data[0].recordings[0].url"
        );
    }

    #[test]
    fn labelled_roots_prefix_the_path_with_the_input_name() {
        let value = json!({"data": {"email": 1}});
        let root = Node::root(&value, "user");
        let data = root.get("data").unwrap();
        let email = data.get("email").unwrap();
        assert_eq!(field_of(email.str().unwrap_err()), "user:data.email");
        let list = json!([1]);
        let root = Node::root(&list, "dispositions");
        let first = root.items().unwrap().next().unwrap();
        assert_eq!(field_of(first.get("id").unwrap_err()), "dispositions:[0]");
    }

    #[test]
    fn a_wrong_root_is_named_with_a_dollar() {
        let value = json!([]);
        let root = Node::root(&value, "");
        assert_eq!(field_of(root.get("id").unwrap_err()), "$");
    }

    #[test]
    fn absent_members_read_as_null_through_a_chain() {
        let value = json!({});
        let root = Node::root(&value, "");
        let user = root.get("user").unwrap();
        assert_eq!(user.get("id").unwrap().id().unwrap(), None);
        assert_eq!(
            field_of(user.get("id").unwrap().required().unwrap_err()),
            "user.id"
        );
    }

    #[test]
    fn ids_come_as_integers_or_strings() {
        let value = json!({"a": 123, "b": " 456 ", "c": 1.5, "d": -1});
        let root = Node::root(&value, "");
        assert_eq!(root.get("a").unwrap().id().unwrap().as_deref(), Some("123"));
        assert_eq!(root.get("b").unwrap().id().unwrap().as_deref(), Some("456"));
        assert!(matches!(
            root.get("c").unwrap().id(),
            Err(InputError::WrongType(_))
        ));
        assert_eq!(root.get("d").unwrap().id().unwrap().as_deref(), Some("-1"));
    }

    #[test]
    fn counts_refuse_negative_and_fractional_values() {
        let value = json!({"a": "42", "b": -1, "c": 2.5, "d": "x", "e": 1e300});
        let root = Node::root(&value, "");
        assert_eq!(root.get("a").unwrap().count().unwrap(), Some(42));
        for key in ["b", "c", "d", "e"] {
            assert!(matches!(
                root.get(key).unwrap().count(),
                Err(InputError::InvalidValue(_))
            ));
        }
    }

    #[test]
    fn seconds_round_and_refuse_what_does_not_fit() {
        let value = json!({"ms": "1250499", "up": 1500, "big": 1e12, "neg": -3});
        let root = Node::root(&value, "");
        assert_eq!(root.get("ms").unwrap().seconds(1000.0).unwrap(), Some(1250));
        assert_eq!(root.get("up").unwrap().seconds(1000.0).unwrap(), Some(2));
        assert!(root.get("big").unwrap().seconds(1.0).is_err());
        assert!(root.get("neg").unwrap().seconds(1.0).is_err());
    }

    #[test]
    fn flags_accept_the_usual_spellings() {
        let value = json!({"a": true, "b": "false", "c": 1, "d": "maybe", "e": 7});
        let root = Node::root(&value, "");
        assert_eq!(root.get("a").unwrap().flag().unwrap(), Some(true));
        assert_eq!(root.get("b").unwrap().flag().unwrap(), Some(false));
        assert_eq!(root.get("c").unwrap().flag().unwrap(), Some(true));
        assert!(root.get("d").unwrap().flag().is_err());
        assert!(root.get("e").unwrap().flag().is_err());
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let body = " ".repeat(MAX_INPUT_BYTES + 1);
        assert!(matches!(parse(&body, ""), Err(InputError::TooLarge(_))));
    }

    #[test]
    fn invalid_json_names_the_input() {
        let Err(InputError::InvalidJson(message)) = parse("{", "user") else {
            panic!("expected invalid-json");
        };
        assert!(message.starts_with("user: "), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            percent_encode("2026-04-22T15:30:00.123456+00:00"),
            "2026-04-22T15%3A30%3A00.123456%2B00%3A00"
        );
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
