//! What the plugin decided about one record, in the core's own terms, and
//! the ledger row each decision becomes.
//!
//! Each driver converts the plugin's generated types into these (plain
//! type conversion in its plugin port), so both store the same reason
//! codes and the same sentences for the same record: the ledger's `reason`
//! column reads the same whichever driver wrote it.

use std::fmt;

use crate::ledger::intake::{Outcome, warnings_text};

/// Why a record could not be read (the plugin's `input-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputProblem {
    InvalidJson(String),
    MissingField(String),
    WrongType { field: String, detail: String },
    InvalidValue { field: String, detail: String },
    TooLarge { size: u64, limit: u64 },
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputProblem::InvalidJson(message) => {
                write!(f, "the input is not valid JSON: {message}")
            }
            InputProblem::MissingField(path) => {
                write!(f, "the required field `{path}` is missing or null")
            }
            InputProblem::WrongType { field, detail } => {
                write!(f, "the field `{field}` has the wrong type: {detail}")
            }
            InputProblem::InvalidValue { field, detail } => {
                write!(
                    f,
                    "the field `{field}` has a value that cannot be used: {detail}"
                )
            }
            InputProblem::TooLarge { size, limit } => write!(
                f,
                "the input is {size} bytes, over the plugin's limit of {limit} bytes"
            ),
        }
    }
}

/// Why a call the plugin would send cannot become a Kendo payload (the
/// plugin's `build-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildProblem {
    NoMedia,
    MissingRepEmail,
    InvalidRepEmail(String),
    InvalidCallDate(String),
    TooLarge { size: u64, limit: u64 },
}

impl BuildProblem {
    /// The ledger's reason code: the plugin's case name (`too-large` also
    /// names Kendo's 413).
    pub fn code(&self) -> &'static str {
        match self {
            BuildProblem::NoMedia => "no-media",
            BuildProblem::MissingRepEmail => "missing-rep-email",
            BuildProblem::InvalidRepEmail(_) => "invalid-rep-email",
            BuildProblem::InvalidCallDate(_) => "invalid-call-date",
            BuildProblem::TooLarge { .. } => "too-large",
        }
    }
}

impl fmt::Display for BuildProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildProblem::NoMedia => f.write_str(
                "the call has neither `audioUrl` nor `transcript`, so Kendo has nothing to analyse",
            ),
            BuildProblem::MissingRepEmail => f.write_str(
                "`repEmail` is missing: add the rep to the [[reps]] directory in the config",
            ),
            BuildProblem::InvalidRepEmail(email) => {
                write!(f, "`repEmail` {email:?} is not a valid email address")
            }
            BuildProblem::InvalidCallDate(date) => {
                write!(f, "`callDate` {date:?} is not an RFC 3339 date")
            }
            BuildProblem::TooLarge { size, limit } => write!(
                f,
                "the payload is {size} bytes, over the {limit}-byte limit, and without an \
                 `audioUrl` the `transcript` cannot be cut to fit"
            ),
        }
    }
}

/// A call to send, with its payload built.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub payload: String,
    pub title: String,
    pub rep_email: Option<String>,
    /// Optional fields left out because they could not be read:
    /// `(field, why)`.
    pub warnings: Vec<(String, String)>,
}

/// What became of one record in the plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    Send(Built),
    /// Not sent; `code` is the plugin's `skip-code` case name.
    Skip {
        code: String,
        detail: String,
    },
    /// Not ready; `code` is the plugin's `wait-code` case name.
    Wait {
        code: String,
        detail: String,
    },
    /// The record could not be read.
    Unreadable(InputProblem),
    /// The call could not become a payload.
    Unbuildable(BuildProblem),
    /// The plugin trapped on this record (a driver that survives a trap
    /// records it; one whose instance dies with the trap cannot).
    Trapped(String),
}

impl Decided {
    /// The ledger row's outcome: one conversion for both drivers.
    pub fn outcome(self) -> Outcome {
        match self {
            Decided::Send(built) => Outcome::Send {
                warnings: warnings_text(
                    built
                        .warnings
                        .iter()
                        .map(|(field, why)| (field.as_str(), why.as_str())),
                ),
                payload: built.payload,
                title: built.title,
                rep_email: built.rep_email,
            },
            Decided::Skip { code, detail } => Outcome::Skip { code, detail },
            Decided::Wait { code, detail } => Outcome::Wait { code, detail },
            Decided::Unreadable(problem) => Outcome::Fail {
                code: UNREADABLE.into(),
                detail: problem.to_string(),
            },
            Decided::Unbuildable(problem) => Outcome::Fail {
                code: problem.code().into(),
                detail: problem.to_string(),
            },
            Decided::Trapped(trap) => Outcome::Fail {
                code: PLUGIN_TRAP.into(),
                detail: format!("the plugin trapped on this record: {trap}"),
            },
        }
    }
}

/// The reason code of a record the plugin could not read.
pub const UNREADABLE: &str = "unreadable";
/// The reason code of a record the plugin trapped on.
pub const PLUGIN_TRAP: &str = "plugin-trap";

/// A listed record the plugin could not read, as the detail its failed row
/// keeps: what is wrong and where in the list.
pub fn rejected_detail(problem: &InputProblem, at: &str) -> String {
    format!("{problem} (at {at})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_record_is_kept_with_the_sentence_that_names_its_field() {
        let outcome = Decided::Unreadable(InputProblem::WrongType {
            field: "duration".into(),
            detail: "expected a number, found a string".into(),
        })
        .outcome();
        assert_eq!(
            outcome,
            Outcome::Fail {
                code: "unreadable".into(),
                detail:
                    "the field `duration` has the wrong type: expected a number, found a string"
                        .into()
            }
        );
    }

    #[test]
    fn a_payload_that_cannot_be_built_is_kept_under_the_plugins_case_name() {
        let outcome =
            Decided::Unbuildable(BuildProblem::InvalidCallDate("yesterday".into())).outcome();
        assert_eq!(
            outcome,
            Outcome::Fail {
                code: "invalid-call-date".into(),
                detail: "`callDate` \"yesterday\" is not an RFC 3339 date".into()
            }
        );
    }

    #[test]
    fn a_send_keeps_its_warnings_one_per_line() {
        let outcome = Decided::Send(Built {
            payload: "{}".into(),
            title: "t".into(),
            rep_email: None,
            warnings: vec![("direction".into(), "unknown".into())],
        })
        .outcome();
        let Outcome::Send { warnings, .. } = outcome else {
            panic!("a send stays a send");
        };
        assert_eq!(warnings.as_deref(), Some("direction: unknown"));
    }
}
