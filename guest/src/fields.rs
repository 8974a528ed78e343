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

use alloc::boxed::Box;

use crate::prelude::*;

use serde_json::Value;

use crate::types::{FieldProblem, HttpRequest, InputError, SizeProblem};

/// The largest body the plugin reads. A call record, a user or a page of
/// sentences is kilobytes; this only stops a runaway input from exhausting
/// the component's memory.
pub(crate) const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

static NULL: Value = Value::Null;

/// An [`InputError`] behind a pointer. Every accessor and reader inside the
/// plugin answers `Result<_, Fault>`: a one-word error makes each of the
/// hundreds of `?` in the source modules a test and a branch instead of a
/// copy of the whole error, which keeps the component small. The `Guest`
/// implementations turn it back into the `InputError` the host sees.
pub(crate) struct Fault(Box<InputError>);

impl From<InputError> for Fault {
    #[cold]
    #[inline(never)]
    fn from(error: InputError) -> Self {
        Fault(Box::new(error))
    }
}

impl From<Fault> for InputError {
    #[inline(never)]
    fn from(fault: Fault) -> Self {
        *fault.0
    }
}

impl core::fmt::Debug for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

/// What the plugin's readers answer.
pub(crate) type Outcome<T> = Result<T, Fault>;

/// An optional field's value, or None with a warning when it cannot be
/// read: the call is still sent without it.
pub(crate) fn optional<T>(read: Outcome<Option<T>>, warnings: &mut Vec<FieldProblem>) -> Option<T> {
    match read {
        Ok(value) => value,
        Err(fault) => {
            warnings.push(problem(fault.into()));
            None
        }
    }
}

/// An input error as a field problem (a warning).
pub(crate) fn problem(error: InputError) -> FieldProblem {
    match error {
        InputError::WrongType(problem) | InputError::InvalidValue(problem) => problem,
        InputError::MissingField(field) => FieldProblem {
            field,
            detail: "is missing".to_owned(),
        },
        InputError::InvalidJson(detail) => FieldProblem {
            field: String::new(),
            detail,
        },
        InputError::TooLarge(size) => FieldProblem {
            field: String::new(),
            detail: format!("is {} bytes, over the limit of {}", size.size, size.limit),
        },
    }
}

/// `missing-field` naming `path`.
#[cold]
#[inline(never)]
pub(crate) fn missing(path: String) -> Fault {
    InputError::MissingField(path).into()
}

/// Parses one input. `input` names it in the error when it is not the main
/// record (`user`, `sentences[2]`, ...).
pub(crate) fn parse(body: &str, input: &str) -> Outcome<Value> {
    if body.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge(SizeProblem {
            size: u64::try_from(body.len()).unwrap_or(u64::MAX),
            limit: MAX_INPUT_BYTES as u64,
        })
        .into());
    }
    serde_json::from_str(body).map_err(|error| {
        Fault::from(InputError::InvalidJson(if input.is_empty() {
            error.to_string()
        } else {
            format!("{input}: {error}")
        }))
    })
}

/// A value as compact JSON text, as `Display` writes it; through the same
/// serializer as [`to_json`] so the component carries one copy of it.
/// Serialising a `Value` cannot fail (its keys are strings).
pub(crate) fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Serialises a value read from an input, to hand it back to the host.
pub(crate) fn to_json(value: &Value) -> Outcome<String> {
    serde_json::to_string(value)
        .map_err(|error| Fault::from(InputError::InvalidJson(error.to_string())))
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

impl core::fmt::Debug for Node<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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
    pub(crate) fn get<'s>(&'s self, key: &'s str) -> Outcome<Node<'v, 's>> {
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

    // One call for a member and its reading: most fields are read that way,
    // and each call site is then one call instead of two and a copy of the
    // intermediate node.

    /// [`Self::get`] then [`Self::text`].
    #[inline(never)]
    pub(crate) fn text_at(&self, key: &str) -> Outcome<Option<&'v str>> {
        self.get(key)?.text()
    }

    /// [`Self::get`] then [`Self::id`].
    #[inline(never)]
    pub(crate) fn id_at(&self, key: &str) -> Outcome<Option<String>> {
        self.get(key)?.id()
    }

    /// [`Self::get`], [`Self::required`] then [`Self::id`].
    #[inline(never)]
    pub(crate) fn required_id_at(&self, key: &str) -> Outcome<Option<String>> {
        self.get(key)?.required()?.id()
    }

    /// [`Self::get`] then [`Self::scalar_text`].
    #[inline(never)]
    pub(crate) fn scalar_text_at(&self, key: &str) -> Outcome<Option<String>> {
        self.get(key)?.scalar_text()
    }

    /// [`Self::get`] then [`Self::flag`].
    #[inline(never)]
    pub(crate) fn flag_at(&self, key: &str) -> Outcome<Option<bool>> {
        self.get(key)?.flag()
    }

    /// [`Self::get`] then [`Self::count`].
    #[inline(never)]
    pub(crate) fn count_at(&self, key: &str) -> Outcome<Option<u64>> {
        self.get(key)?.count()
    }

    /// [`Self::get`] then [`Self::seconds`].
    #[inline(never)]
    pub(crate) fn seconds_at(&self, key: &str, scale: f64) -> Outcome<Option<u32>> {
        self.get(key)?.seconds(scale)
    }

    /// Whether a member is absent or `null` (an error when this is neither
    /// an object nor `null`).
    #[inline(never)]
    pub(crate) fn is_null_at(&self, key: &str) -> Outcome<bool> {
        Ok(self.get(key)?.is_null())
    }

    /// This value, or `missing-field` when it is absent or `null`.
    #[inline(never)]
    pub(crate) fn required(self) -> Outcome<Self> {
        if self.is_null() {
            Err(missing(self.path()))
        } else {
            Ok(self)
        }
    }

    /// This value when it is an object, `None` when `null`.
    #[inline(never)]
    pub(crate) fn object(self) -> Outcome<Option<Self>> {
        match self.value {
            Value::Object(_) => Ok(Some(self)),
            Value::Null => Ok(None),
            _ => Err(self.wrong_type("an object")),
        }
    }

    /// The elements of this array; none when `null`.
    pub(crate) fn items<'s>(&'s self) -> Outcome<impl Iterator<Item = Node<'v, 's>> + 's> {
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
    pub(crate) fn str(&self) -> Outcome<Option<&'v str>> {
        match self.value {
            Value::String(text) => Ok(Some(text)),
            Value::Null => Ok(None),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// A string with surrounding white space removed; an empty one reads as
    /// absent (sources send `""` for "not set").
    #[inline(never)]
    pub(crate) fn text(&self) -> Outcome<Option<&'v str>> {
        Ok(self.str()?.map(str::trim).filter(|text| !text.is_empty()))
    }

    /// [`Self::text`], also accepting a number or a boolean written as one
    /// (HubSpot's properties are strings, but a workflow may post them typed).
    #[inline(never)]
    pub(crate) fn scalar_text(&self) -> Outcome<Option<String>> {
        match self.value {
            Value::Number(_) | Value::Bool(_) => Ok(Some(json_text(self.value))),
            Value::String(_) | Value::Null => Ok(self.text()?.map(str::to_owned)),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// An identifier sent as an integer or a string.
    #[inline(never)]
    pub(crate) fn id(&self) -> Outcome<Option<String>> {
        match self.value {
            Value::Number(number) if number.is_i64() || number.is_u64() => {
                Ok(Some(json_text(self.value)))
            }
            Value::String(_) | Value::Null => Ok(self.text()?.map(str::to_owned)),
            _ => Err(self.wrong_type("an id (an integer or a string)")),
        }
    }

    /// A number sent as a JSON number or as a numeric string.
    #[inline(never)]
    pub(crate) fn number(&self) -> Outcome<Option<f64>> {
        match self.value {
            Value::Number(number) => match number.as_f64() {
                Some(value) if value.is_finite() => Ok(Some(value)),
                _ => Err(self.invalid(format!("{} is not a usable number", json_text(self.value)))),
            },
            Value::String(_) | Value::Null => match self.text()? {
                None => Ok(None),
                Some(text) => match crate::decimal::parse_f64(text) {
                    Some(value) => Ok(Some(value)),
                    None => Err(self.invalid(format!("\"{text}\" is not a number"))),
                },
            },
            _ => Err(self.wrong_type("a number")),
        }
    }

    /// A whole count (an integer, or a numeric string), never negative.
    #[inline(never)]
    pub(crate) fn count(&self) -> Outcome<Option<u64>> {
        let Some(value) = self.number()? else {
            return Ok(None);
        };
        if value < 0.0 {
            return Err(self.invalid(format!("{} is negative", json_text(self.value))));
        }
        // Below 2^64 the cast truncates exactly, so a round trip that
        // changes the value means a fraction (`f64::fract` is not in core).
        if value >= u64::MAX as f64 || (value as u64) as f64 != value {
            return Err(self.invalid(format!("{} is not a whole number", json_text(self.value))));
        }
        // Exact: a non-negative whole f64 below 2^64.
        Ok(Some(value as u64))
    }

    /// A length in seconds, rounded to whole seconds; `scale` divides first
    /// (1000 for milliseconds).
    #[inline(never)]
    pub(crate) fn seconds(&self, scale: f64) -> Outcome<Option<u32>> {
        let Some(value) = self.number()? else {
            return Ok(None);
        };
        if value < 0.0 {
            return Err(self.invalid(format!(
                "a duration cannot be negative ({})",
                json_text(self.value)
            )));
        }
        let seconds = round_half_away(value / scale);
        if seconds > f64::from(u32::MAX) {
            return Err(self.invalid(format!(
                "{} is too long for a call duration",
                json_text(self.value)
            )));
        }
        // In range and whole: the conversion is exact.
        Ok(Some(seconds as u32))
    }

    /// A flag sent as a boolean, `"true"`/`"false"`, `1`/`0` or `"1"`/`"0"`.
    #[inline(never)]
    pub(crate) fn flag(&self) -> Outcome<Option<bool>> {
        match self.value {
            Value::Bool(flag) => Ok(Some(*flag)),
            Value::Null => Ok(None),
            Value::Number(number) => match number.as_u64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(self.invalid(format!(
                    "{} is not a true/false flag",
                    json_text(self.value)
                ))),
            },
            Value::String(text) => {
                let word = text.trim();
                if word.is_empty() {
                    Ok(None)
                } else if is_one_of(word, &["true", "1", "yes"]) {
                    Ok(Some(true))
                } else if is_one_of(word, &["false", "0", "no"]) {
                    Ok(Some(false))
                } else {
                    Err(self.invalid(format!("\"{text}\" is not a true/false flag")))
                }
            }
            _ => Err(self.wrong_type("a true/false flag")),
        }
    }

    #[inline(never)]
    pub(crate) fn wrong_type(&self, expected: &str) -> Fault {
        Fault::from(InputError::WrongType(FieldProblem {
            field: self.path(),
            detail: format!("expected {expected}, found {}", kind(self.value)),
        }))
    }

    #[inline(never)]
    pub(crate) fn invalid(&self, detail: String) -> Fault {
        Fault::from(InputError::InvalidValue(FieldProblem {
            field: self.path(),
            detail,
        }))
    }
}

/// `f64::round` (halves away from zero) for a value that is not negative,
/// which core does not offer without std.
fn round_half_away(value: f64) -> f64 {
    // From 2^52 up every f64 is whole.
    if value >= 4_503_599_627_370_496.0 {
        return value;
    }
    // Below 2^52 the cast truncates exactly and the difference is exact.
    let whole = (value as u64) as f64;
    if value - whole >= 0.5 {
        whole + 1.0
    } else {
        whole
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

/// A decimal integer as `str::parse` reads one: an optional sign, then
/// digits; None when malformed or past 64 bits. One reader for every
/// integer type (each `parse::<T>` instantiation costs the component half a
/// kilobyte); the `T::try_from` of the result gives the type's range.
fn integer(text: &str) -> Option<(bool, u64)> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    Some((negative, value))
}

/// `text.parse::<u64>()` (a `-` sign is refused, even on zero).
pub(crate) fn parse_u64(text: &str) -> Option<u64> {
    match integer(text)? {
        (false, value) => Some(value),
        (true, _) => None,
    }
}

/// `text.parse::<i64>()`.
pub(crate) fn parse_i64(text: &str) -> Option<i64> {
    match integer(text)? {
        (false, value) => i64::try_from(value).ok(),
        (true, value) => 0i64.checked_sub_unsigned(value),
    }
}

/// Whether `text` is one of `words`, ignoring ASCII case (without the
/// lowercased copy a `match` on `to_ascii_lowercase()` needs).
pub(crate) fn is_one_of(text: &str, words: &[&str]) -> bool {
    words.iter().any(|word| text.eq_ignore_ascii_case(word))
}

/// `parts` with `separator` between them.
pub(crate) fn join<'a>(parts: impl IntoIterator<Item = &'a str>, separator: &str) -> String {
    let mut out = String::new();
    for (index, part) in parts.into_iter().enumerate() {
        if index > 0 {
            out.push_str(separator);
        }
        out.push_str(part);
    }
    out
}

/// `first last`, or either alone; None without both.
pub(crate) fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let name = join([first, last].into_iter().flatten(), " ");
    (!name.is_empty()).then_some(name)
}

/// Lines joined by `\n` in the order of their keys (absent keys last), ties
/// in their original order; None when there are none.
///
/// One hand-written merge sort on packed integers serves every source: each
/// `slice::sort` instantiation costs the component 3 to 5 KB.
pub(crate) fn ordered_lines(lines: &[(Option<u64>, &str)]) -> Option<String> {
    // Absent flag, key, position: unique, so sorting them is stable.
    let mut keys: Vec<u128> = lines
        .iter()
        .enumerate()
        .map(|(index, (key, _))| {
            let (absent, key) = match key {
                Some(key) => (0, *key),
                None => (1, 0),
            };
            (absent << 96) | (u128::from(key) << 32) | index as u128
        })
        .collect();
    merge_sort(&mut keys);
    let text = join(
        keys.iter().filter_map(|key| {
            // The low 32 bits are the position.
            let index = (*key as u32) as usize;
            lines.get(index).map(|(_, line)| *line)
        }),
        "\n",
    );
    (!text.is_empty()).then_some(text)
}

/// An `f64`'s `total_cmp` order as an integer.
pub(crate) fn sortable_f64(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Bottom-up merge sort.
fn merge_sort(keys: &mut Vec<u128>) {
    let mut width = 1;
    let mut merged = Vec::with_capacity(keys.len());
    while width < keys.len() {
        merged.clear();
        for chunk in keys.chunks(2 * width) {
            let (left, right) = chunk.split_at(width.min(chunk.len()));
            let (mut left, mut right) = (left.iter().peekable(), right.iter().peekable());
            while let (Some(a), Some(b)) = (left.peek(), right.peek()) {
                if a <= b {
                    merged.push(**a);
                    left.next();
                } else {
                    merged.push(**b);
                    right.next();
                }
            }
            merged.extend(left);
            merged.extend(right);
        }
        core::mem::swap(keys, &mut merged);
        width *= 2;
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

    fn field_of(error: Fault) -> String {
        match InputError::from(error) {
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
            root.get("c").unwrap().id().map_err(InputError::from),
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
                root.get(key).unwrap().count().map_err(InputError::from),
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
    fn rounding_matches_std_for_halves_and_neighbours() {
        for value in [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            1249.5,
            4_503_599_627_370_495.5,
            4_503_599_627_370_497.0,
            9_007_199_254_740_993.0,
            1e300,
        ] {
            assert_eq!(round_half_away(value), value.round(), "{value}");
        }
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
    fn lines_are_ordered_by_key_with_absent_keys_last_and_ties_stable() {
        let lines = [
            (Some(30), "c"),
            (None, "x"),
            (Some(10), "a"),
            (Some(30), "d"),
            (None, "y"),
            (Some(u64::MAX), "z"),
            (Some(0), "first"),
        ];
        assert_eq!(
            ordered_lines(&lines).as_deref(),
            Some("first\na\nc\nd\nz\nx\ny")
        );
        assert_eq!(ordered_lines(&[]), None);
    }

    #[test]
    fn sortable_f64_follows_total_cmp() {
        let values = [-1e300, -2.5, -0.0, 0.0, 1e-300, 2.5, 1e300];
        for pair in values.windows(2) {
            assert!(sortable_f64(pair[0]) < sortable_f64(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn integers_read_as_str_parse_reads_them() {
        for text in [
            "",
            "+",
            "-",
            "0",
            "-0",
            "+0",
            "42",
            "+42",
            "-42",
            "007",
            "1_000",
            " 1",
            "1 ",
            "--1",
            "+-1",
            "255",
            "256",
            "-128",
            "-129",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "١٢",
        ] {
            assert_eq!(parse_u64(text), text.parse::<u64>().ok(), "u64 {text:?}");
            assert_eq!(parse_i64(text), text.parse::<i64>().ok(), "i64 {text:?}");
            let as_i32 = parse_i64(text).and_then(|value| i32::try_from(value).ok());
            assert_eq!(as_i32, text.parse::<i32>().ok(), "i32 {text:?}");
            let as_u8 = parse_u64(text).and_then(|value| u8::try_from(value).ok());
            assert_eq!(as_u8, text.parse::<u8>().ok(), "u8 {text:?}");
        }
    }

    #[test]
    fn names_join_what_is_there() {
        assert_eq!(
            full_name(Some("Jamie"), Some("Rivera")).as_deref(),
            Some("Jamie Rivera")
        );
        assert_eq!(full_name(None, Some("Rivera")).as_deref(), Some("Rivera"));
        assert_eq!(full_name(None, None), None);
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let body = " ".repeat(MAX_INPUT_BYTES + 1);
        assert!(matches!(
            parse(&body, "").map_err(InputError::from),
            Err(InputError::TooLarge(_))
        ));
    }

    #[test]
    fn invalid_json_names_the_input() {
        let Err(InputError::InvalidJson(message)) = parse("{", "user").map_err(InputError::from)
        else {
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
