//! `kendo-bridge doctor` against the simulators: a checklist, exit 0 only
//! when every check passes, and the failing one named with its fix.

use std::process::Output;

use crate::support::{kendo_bridge, staged};
use kendo_bridge::demo::StageOptions;
use kendo_bridge_sim::Dataset;

fn doctor(config: &std::path::Path) -> Output {
    kendo_bridge()
        .args(["doctor", "--config"])
        .arg(config)
        .output()
        .expect("kendo-bridge starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_every_check_on_a_working_configuration() {
    let (_dir, stage) = staged(Dataset::demo(7), StageOptions::default()).await;
    let out = doctor(&stage.config_path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    for check in [
        "salesloft calls",
        "salesloft call data records",
        "salesloft users",
        "hubspot calls search",
        "hubspot owners",
        "hubspot dispositions",
        "state database",
    ] {
        assert!(
            text.contains(&format!("ok    {check}")),
            "{check} in:\n{text}"
        );
    }
    assert!(
        stage.sims.kendo.accepted().is_empty(),
        "doctor sends nothing to Kendo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_salesloft_key_fails_doctor_naming_the_key_and_exits_1() {
    let (dir, stage) = staged(Dataset::demo(7), StageOptions::default()).await;
    std::fs::write(dir.path().join("salesloft-key.secret"), "not-the-key")
        .expect("the secret file is written");
    let out = doctor(&stage.config_path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let failing: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failing.iter().all(|l| l.contains("salesloft")),
        "only Salesloft fails: {failing:?}"
    );
    assert!(
        failing.iter().any(|l| l.contains("salesloft.api_key")),
        "the fix names the setting: {failing:?}"
    );
    assert!(text.contains("ok    hubspot calls search"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unset_secret_fails_doctor_before_any_live_check() {
    let (_dir, stage) = staged(Dataset::demo(7), StageOptions::default()).await;
    let config = std::fs::read_to_string(&stage.config_path).expect("the configuration");
    let broken = config.replacen(
        "token = { file =",
        "token = { env = \"KENDO_BRIDGE_TEST_UNSET\" }\n# was: token = { file =",
        1,
    );
    std::fs::write(&stage.config_path, broken).expect("the configuration is written");
    let out = doctor(&stage.config_path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL  secret hubspot.token")
                && l.contains("KENDO_BRIDGE_TEST_UNSET")),
        "{text}"
    );
    assert!(
        text.contains("FAIL  live checks against the sources: not run"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_dispositions_are_a_warning_exit_0_and_exit_1_with_strict() {
    let (_dir, stage) = staged(Dataset::demo(7), StageOptions::default()).await;
    stage.sims.hubspot.fail_dispositions(true);
    let out = doctor(&stage.config_path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARN  hubspot dispositions") && l.contains("optional")),
        "{text}"
    );

    let strict = kendo_bridge()
        .args(["doctor", "--strict", "--config"])
        .arg(&stage.config_path)
        .output()
        .expect("kendo-bridge starts");
    assert_eq!(
        strict.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&strict.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_json_grades_each_check_for_scripts() {
    let (_dir, stage) = staged(Dataset::demo(7), StageOptions::default()).await;
    stage.sims.hubspot.fail_dispositions(true);
    let out = kendo_bridge()
        .args(["doctor", "--json", "--config"])
        .arg(&stage.config_path)
        .output()
        .expect("kendo-bridge starts");
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    assert_eq!(report["fail"], 0, "{report:#}");
    assert_eq!(report["warn"], 1, "{report:#}");
    let graded: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|c| Some((c["name"].as_str()?, c["grade"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        graded
            .iter()
            .any(|(name, grade)| name.starts_with("hubspot dispositions") && *grade == "warn"),
        "{graded:?}"
    );
    assert!(
        graded
            .iter()
            .any(|(name, grade)| name.starts_with("hubspot calls search") && *grade == "ok"),
        "{graded:?}"
    );
}
