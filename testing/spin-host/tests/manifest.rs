//! spin.toml against the app's code: a variable the app reads but the
//! manifest does not declare is undefined on a real Spin (the app would
//! run as if it were unset), which no test host run can show.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The names the app passes to `variable("...")`.
fn variables_read() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let dir = root().join("spin/src");
    for entry in std::fs::read_dir(&dir).expect("spin/src") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        for (_, rest) in text
            .match_indices("variable(\"")
            .map(|(i, _)| text.split_at(i + 10))
        {
            if let Some(end) = rest.find('"') {
                names.insert(rest[..end].to_string());
            }
        }
    }
    names
}

fn table_keys(manifest: &toml::Table, path: &[&str]) -> BTreeSet<String> {
    let mut table = manifest;
    for key in path {
        table = table
            .get(*key)
            .and_then(|v| v.as_table())
            .unwrap_or_else(|| panic!("spin.toml has no [{}]", path.join(".")));
    }
    table.keys().cloned().collect()
}

#[test]
fn every_variable_the_app_reads_is_declared_and_given_to_the_component() {
    let text = std::fs::read_to_string(root().join("spin.toml")).expect("spin.toml");
    let manifest: toml::Table = text.parse().expect("spin.toml is TOML");
    let declared = table_keys(&manifest, &["variables"]);
    let given = table_keys(&manifest, &["component", "bridge", "variables"]);
    let read = variables_read();
    assert!(
        read.len() > 10,
        "the scan finds the app's variables: {read:?}"
    );
    let undeclared: Vec<_> = read.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "read but not in [variables]: {undeclared:?}"
    );
    let not_given: Vec<_> = read.difference(&given).collect();
    assert!(
        not_given.is_empty(),
        "read but not in [component.bridge.variables]: {not_given:?}"
    );
}
