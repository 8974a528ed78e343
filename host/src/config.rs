//! The configuration file (TOML).
//!
//! ```toml
//! [rules]
//! title_template = "{direction} - {disposition}||{disposition}"  # optional
//! min_duration_seconds = 0
//! allowed_dispositions = []
//!
//! [[reps]]
//! key = "1001"            # source user/owner id, guid or email
//! email = "jamie@yourco.com"
//! name = "Jamie Rivera"   # optional
//! ```
//!
//! Unknown top-level sections are accepted so that one file can carry
//! settings for every subcommand; inside `[rules]` and `[[reps]]` an unknown
//! key is an error, because a misspelt rule would otherwise be silently
//! ignored.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plugin::types::{RepEntry, Rules};

mod bridge;
pub use bridge::*;

/// The parsed configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `[rules]`: eligibility and presentation.
    pub rules: RulesConfig,
    /// `[[reps]]`: the rep directory.
    pub reps: Vec<RepConfig>,
}

/// `[rules]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// The `callTitle` template; the source's default when absent.
    #[serde(default)]
    pub title_template: Option<String>,
    /// Calls shorter than this are skipped.
    #[serde(default)]
    pub min_duration_seconds: u32,
    /// When not empty, only these dispositions are sent.
    #[serde(default)]
    pub allowed_dispositions: Vec<String>,
}

/// One `[[reps]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepConfig {
    /// A source user/owner id, guid or email.
    pub key: String,
    /// The Kendo team member's email.
    pub email: String,
    /// The display name; the source's when absent.
    pub name: Option<String>,
}

/// Why the configuration file cannot be used. Every message names the file,
/// the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type.
    #[error("{}:{}", path.display(), location)]
    Parse { path: PathBuf, location: Located },
    /// A value is well-formed but cannot be used.
    #[error("{}:{}", path.display(), location)]
    Invalid { path: PathBuf, location: Located },
}

/// A problem and where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The dotted key, e.g. `rules.min_duration_seconds` or `reps[1].email`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        f.write_str(" ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    rules: RulesConfig,
    #[serde(default)]
    reps: Vec<RawRep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRep {
    key: toml::Spanned<String>,
    email: toml::Spanned<String>,
    #[serde(default)]
    name: Option<String>,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            location: locate_parse_error(text, &error),
        })?;
        let invalid =
            |span: std::ops::Range<usize>, key: String, message: &str| ConfigError::Invalid {
                path: path.to_path_buf(),
                location: Located {
                    line: Some(line_of(text, span.start)),
                    key: Some(key),
                    message: message.to_owned(),
                },
            };

        let mut reps: Vec<RepConfig> = Vec::with_capacity(raw.reps.len());
        for (index, rep) in raw.reps.into_iter().enumerate() {
            let key_span = rep.key.span();
            let email_span = rep.email.span();
            let key = rep.key.into_inner().trim().to_owned();
            let email = rep.email.into_inner().trim().to_owned();
            if key.is_empty() {
                return Err(invalid(key_span, format!("reps[{index}].key"), "is empty"));
            }
            if email.is_empty() {
                return Err(invalid(
                    email_span,
                    format!("reps[{index}].email"),
                    "is empty",
                ));
            }
            if let Some(earlier) = reps
                .iter()
                .position(|seen| seen.key.eq_ignore_ascii_case(&key))
            {
                return Err(invalid(
                    key_span,
                    format!("reps[{index}].key"),
                    &format!(
                        "{key:?} is already the key of reps[{earlier}] \
                         (keys compare case-insensitively)"
                    ),
                ));
            }
            reps.push(RepConfig {
                key,
                email,
                name: rep.name.filter(|name| !name.trim().is_empty()),
            });
        }
        Ok(Config {
            rules: raw.rules,
            reps,
        })
    }

    /// The plugin's `rules` record.
    pub fn to_rules(&self) -> Rules {
        Rules {
            title_template: self.rules.title_template.clone(),
            min_duration_seconds: self.rules.min_duration_seconds,
            allowed_dispositions: self.rules.allowed_dispositions.clone(),
            rep_directory: self
                .reps
                .iter()
                .map(|rep| RepEntry {
                    key: rep.key.clone(),
                    email: rep.email.clone(),
                    name: rep.name.clone(),
                })
                .collect(),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map(|before| before.iter().filter(|&&byte| byte == b'\n').count())
        .unwrap_or(0)
        + 1
}

/// Turns a TOML error into a line, a dotted key (from the table header
/// above the error and the `key =` on its line) and the bare message.
fn locate_parse_error(text: &str, error: &toml::de::Error) -> Located {
    let message = error.message().trim().to_owned();
    let Some(span) = error.span() else {
        return Located {
            line: None,
            key: None,
            message,
        };
    };
    let line = line_of(text, span.start);
    let lines: Vec<&str> = text.lines().collect();
    let index = line.saturating_sub(1);
    let key_on_line = lines
        .get(index)
        .and_then(|content| content.split_once('='))
        .map(|(key, _)| key.trim().trim_matches('"').to_owned())
        .filter(|key| !key.is_empty() && !key.starts_with('['));
    let table = lines
        .get(..=index.min(lines.len().saturating_sub(1)))
        .unwrap_or_default()
        .iter()
        .rev()
        .map(|content| content.trim())
        .find(|content| content.starts_with('['))
        .map(|header| {
            header
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned()
        });
    let key = match (table, key_on_line) {
        (Some(table), Some(key)) => Some(format!("{table}.{key}")),
        (None, Some(key)) => Some(key),
        (Some(table), None) => Some(table),
        (None, None) => None,
    };
    Located {
        line: Some(line),
        key,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("bridge.toml"))
    }

    #[test]
    fn full_example_becomes_rules_with_the_rep_directory() {
        let config = parse(
            r#"
[rules]
title_template = "{direction} - {disposition}||{disposition}"
min_duration_seconds = 30
allowed_dispositions = ["Connected"]

[[reps]]
key = "1001"
email = "jamie@yourco.com"
name = "Jamie Rivera"

[[reps]]
key = "sam@yourco.com"
email = "sam@yourco.com"
"#,
        )
        .unwrap();
        let rules = config.to_rules();
        assert_eq!(
            rules.title_template.as_deref(),
            Some("{direction} - {disposition}||{disposition}")
        );
        assert_eq!(rules.min_duration_seconds, 30);
        assert_eq!(rules.allowed_dispositions, vec!["Connected".to_owned()]);
        assert_eq!(rules.rep_directory.len(), 2);
        assert_eq!(rules.rep_directory[0].name.as_deref(), Some("Jamie Rivera"));
        assert_eq!(rules.rep_directory[1].name, None);
    }

    #[test]
    fn empty_file_gives_default_rules() {
        let rules = parse("").unwrap().to_rules();
        assert_eq!(rules.title_template, None);
        assert_eq!(rules.min_duration_seconds, 0);
        assert!(rules.allowed_dispositions.is_empty());
        assert!(rules.rep_directory.is_empty());
    }

    #[test]
    fn unknown_top_level_section_is_accepted_for_other_subcommands() {
        assert!(parse("[kendo]\nteam = \"x\"\n").is_ok());
    }

    #[test]
    fn unknown_key_in_rules_names_file_line_and_key() {
        let error = parse("[rules]\nmin_duration = 10\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("bridge.toml:2:"), "{error}");
        assert!(error.contains("`rules.min_duration`"), "{error}");
        assert!(error.contains("unknown field"), "{error}");
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let error = parse("[rules]\n\nmin_duration_seconds = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("bridge.toml:3:"), "{error}");
        assert!(error.contains("`rules.min_duration_seconds`"), "{error}");
    }

    #[test]
    fn unknown_key_in_a_rep_is_an_error() {
        let error = parse("[[reps]]\nkey = \"1\"\nemail = \"a@b.co\"\nmail = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains(":4:"), "{error}");
        assert!(error.contains("`reps.mail`"), "{error}");
    }

    #[test]
    fn rep_without_email_is_an_error() {
        let error = parse("[[reps]]\nkey = \"1\"\n").unwrap_err().to_string();
        assert!(error.contains("email"), "{error}");
    }

    #[test]
    fn empty_rep_email_names_its_index_and_line() {
        let error = parse(
            "[[reps]]\nkey = \"1\"\nemail = \"a@b.co\"\n[[reps]]\nkey = \"2\"\nemail = \" \"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(error, "bridge.toml:6: `reps[1].email`: is empty");
    }

    #[test]
    fn duplicate_rep_keys_are_an_error() {
        let error = parse(
            "[[reps]]\nkey = \"Sam@X.co\"\nemail = \"a@b.co\"\n[[reps]]\nkey = \"sam@x.co\"\nemail = \"c@d.co\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("`reps[1].key`"), "{error}");
        assert!(error.contains("reps[0]"), "{error}");
    }
}
