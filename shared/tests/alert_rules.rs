//! The local alerts mirror the deployed alarms: every CloudWatch alarm of
//! `template.yaml` has exactly one Prometheus alert in
//! `local-stack/monitoring/rules/alerts.yml` naming it (label
//! `cloudwatch_alarm`), no alert names an alarm the template lacks, and
//! the runbook (`docs/operations.md`) has one row per alert.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_serde::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn yaml(path: &str) -> Value {
    yaml_serde::from_str(&std::fs::read_to_string(repo_root().join(path)).unwrap()).unwrap()
}

fn template_alarms() -> Vec<String> {
    let template = yaml("template.yaml");
    let mut alarms: Vec<String> = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(name, _)| name.as_str().unwrap().to_owned())
        .collect();
    alarms.sort();
    alarms
}

/// Alert name -> the alarm it mirrors.
fn local_alerts() -> BTreeMap<String, String> {
    let rules = yaml("local-stack/monitoring/rules/alerts.yml");
    let mut alerts = BTreeMap::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().expect("alerts.yml holds alerts only").to_owned();
            let alarm = rule["labels"]["cloudwatch_alarm"].as_str().unwrap_or_else(|| panic!("{name}: no alarm"));
            assert!(rule["annotations"]["summary"].as_str().is_some(), "{name}: a summary");
            assert!(alerts.insert(name.clone(), alarm.to_owned()).is_none(), "{name} twice");
        }
    }
    alerts
}

#[test]
fn every_cloudwatch_alarm_has_exactly_one_local_alert_and_no_alert_more() {
    let alarms = template_alarms();
    assert!(alarms.len() >= 12, "{alarms:?}");
    let mut mirrored: Vec<String> = local_alerts().into_values().collect();
    mirrored.sort();
    assert_eq!(mirrored, alarms, "alerts.yml's cloudwatch_alarm labels against template.yaml's alarms");
}

/// The runbook rows (in `docs/operations.md`, where the alerts' `runbook`
/// annotation points) are `| \`AlertName\` | ...`.
#[test]
fn the_runbook_has_one_row_per_alert() {
    let runbook = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    for (alert, alarm) in local_alerts() {
        let row = format!("| `{alert}` | `{alarm}` |");
        let rows = runbook.lines().filter(|line| line.starts_with(&row)).count();
        assert_eq!(rows, 1, "docs/operations.md rows starting {row}");
    }
}
