//! The state database's schema, shared by every driver: the host applies it
//! with `rusqlite_migration`, the Spin app statement by statement through
//! Spin's SQLite API. `PRAGMA user_version` records how many files have been
//! applied; a change to the schema is a new file appended here, never an
//! edit of an old one.

/// The migrations, in order.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_source_health.sql"),
    include_str!("../migrations/0003_call_data_records.sql"),
    include_str!("../migrations/0004_first_look_back.sql"),
    include_str!("../migrations/0005_aloware_transcript_wait.sql"),
    include_str!("../migrations/0006_ambiguous_sends.sql"),
    include_str!("../migrations/0007_decision_rules.sql"),
    include_str!("../migrations/0008_call_warnings.sql"),
    include_str!("../migrations/0009_shared_claims.sql"),
    include_str!("../migrations/0010_write_backs.sql"),
    include_str!("../migrations/0011_inbox_claims.sql"),
    include_str!("../migrations/0012_one_call_state.sql"),
    include_str!("../migrations/0013_transcripts_seen.sql"),
    include_str!("../migrations/0014_answered_sends.sql"),
    include_str!("../migrations/0015_kendo_call_id_lookup.sql"),
];

/// The statements of one migration, for APIs that run one statement per
/// call (Spin's SQLite): `--` comments dropped, split at `;`. The schema's
/// files keep `;` out of string literals, which this relies on (a test
/// checks every file).
pub fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| match line.find("--") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_drop_comments_and_split_at_semicolons() {
        let sql = "-- a table; with a note\nCREATE TABLE a (x INTEGER); -- trailing\n\nALTER TABLE a ADD COLUMN y TEXT;\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (x INTEGER)",
                "ALTER TABLE a ADD COLUMN y TEXT"
            ]
        );
    }

    #[test]
    fn no_migration_has_a_semicolon_or_comment_marker_inside_a_string() {
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let code: String = sql
                .lines()
                .map(|line| line.split("--").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            // Every other piece between single quotes is inside a literal.
            for literal in code.split('\'').skip(1).step_by(2) {
                assert!(
                    !literal.contains(';') && !literal.contains("--"),
                    "migration {} has a string literal the statement splitter would cut: '{literal}'",
                    i + 1
                );
            }
        }
    }
}
