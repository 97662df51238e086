//! `pharos rules test|check` and `pharos alert check-config` as a user runs them: on the rule
//! corpus of `pharos-rules` (every file of which promtool 2.42 agrees with) and the
//! Alertmanager corpus of `pharos-routing` (checked with amtool 0.25); exit status and output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::BIN;

fn corpus(crate_name: &str, dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_name)
        .join("tests")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", root.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
}

fn pharos(args: &[&str], files: &[PathBuf]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .args(files)
        .output()
        .expect("run pharos");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn rules_test_passes_good_files_and_names_each_failure() {
    let passing: Vec<PathBuf> = corpus("pharos-rules", "promtool/passing")
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".test.yml"))
        .collect();
    let (ok, stdout, stderr) = pharos(&["rules", "test"], &passing);
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("  SUCCESS").count(),
        passing.len(),
        "{stdout}"
    );

    let failing: Vec<PathBuf> = corpus("pharos-rules", "promtool/failing")
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".test.yml"))
        .collect();
    let (ok, stdout, stderr) = pharos(&["rules", "test"], &failing);
    assert!(!ok, "failing tests passed:\n{stdout}");
    assert_eq!(
        stderr.matches("  FAILED:").count(),
        failing.len(),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{} of {} rule test files failed",
            failing.len(),
            failing.len()
        )),
        "{stderr}"
    );
}

#[test]
fn rules_check_refuses_invalid_files() {
    let invalid: Vec<PathBuf> = corpus("pharos-rules", "promtool/invalid")
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".yml"))
        .collect();
    for file in &invalid {
        let (ok, stdout, stderr) = pharos(&["rules", "check"], std::slice::from_ref(file));
        assert!(!ok, "{} accepted:\n{stdout}", file.display());
        assert!(stderr.contains("  FAILED:"), "{stderr}");
    }
    let valid: Vec<PathBuf> = corpus("pharos-rules", "promtool/passing")
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    let (ok, stdout, stderr) = pharos(&["rules", "check"], &valid);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("rules found"), "{stdout}");
}

#[test]
fn alert_check_config_reads_alertmanager_files() {
    let valid = corpus("pharos-routing", "amtool/valid");
    let (ok, stdout, stderr) = pharos(&["alert", "check-config"], &valid);
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("  SUCCESS").count(), valid.len(), "{stdout}");
    for dir in ["amtool/invalid", "amtool/unsupported"] {
        for file in corpus("pharos-routing", dir) {
            let (ok, stdout, _) = pharos(&["alert", "check-config"], std::slice::from_ref(&file));
            assert!(!ok, "{} accepted:\n{stdout}", file.display());
            assert!(stdout.contains("  FAILED: "), "{stdout}");
        }
    }
}

/// The self-monitoring rules Pharos ships pass their unit tests in Pharos and in promtool, and
/// both check them clean.
#[test]
fn the_shipped_self_monitoring_rules_pass_in_pharos_and_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("pharos-alert")
        .join("rules");
    let rules = dir.join("self_monitoring.yml");
    let tests = dir.join("self_monitoring.test.yml");
    let (ok, stdout, stderr) = pharos(&["rules", "check"], std::slice::from_ref(&rules));
    assert!(ok, "{stdout}\n{stderr}");
    let (ok, stdout, stderr) = pharos(&["rules", "test"], std::slice::from_ref(&tests));
    assert!(ok && stdout.contains("  SUCCESS"), "{stdout}\n{stderr}");
    let Some(promtool) = crate::support::reference_tool("promtool", "prometheus") else {
        return;
    };
    for (command, file) in [("check", &rules), ("test", &tests)] {
        let output = Command::new(&promtool)
            .args([command, "rules"])
            .arg(file)
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool {command} rules {}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
