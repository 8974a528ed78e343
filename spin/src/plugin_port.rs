//! The plugin's generated types in the core's terms: plain conversions,
//! so that the core decides what each plugin answer becomes.

use kendo_bridge_core::decision::{BuildProblem, InputProblem};

use crate::plugin::kendo::bridge::kendo::BuildError;
use crate::plugin::kendo::bridge::types::InputError;

impl From<&InputError> for InputProblem {
    fn from(error: &InputError) -> InputProblem {
        match error.clone() {
            InputError::InvalidJson(message) => InputProblem::InvalidJson(message),
            InputError::MissingField(path) => InputProblem::MissingField(path),
            InputError::WrongType(p) => InputProblem::WrongType {
                field: p.field,
                detail: p.detail,
            },
            InputError::InvalidValue(p) => InputProblem::InvalidValue {
                field: p.field,
                detail: p.detail,
            },
            InputError::TooLarge(size) => InputProblem::TooLarge {
                size: size.size,
                limit: size.limit,
            },
        }
    }
}

impl From<&BuildError> for BuildProblem {
    fn from(error: &BuildError) -> BuildProblem {
        match error.clone() {
            BuildError::NoMedia => BuildProblem::NoMedia,
            BuildError::MissingRepEmail => BuildProblem::MissingRepEmail,
            BuildError::InvalidRepEmail(email) => BuildProblem::InvalidRepEmail(email),
            BuildError::InvalidCallDate(date) => BuildProblem::InvalidCallDate(date),
            BuildError::TooLarge(size) => BuildProblem::TooLarge {
                size: size.size,
                limit: size.limit,
            },
        }
    }
}
