//! Integration tests of pharos-rules: the rule files and rule unit tests under
//! `tests/promtool/` run through Pharos and through a real promtool 2.42, which must agree on
//! every file: the same verdict, and for failing tests the same failures in the same words.
//!
//! promtool comes from Debian's `prometheus` package (`cargo xtask ci` installs it). Outside CI
//! a missing promtool skips the comparison with a printed reason; under `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The corpus directory.
fn corpus(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/promtool")
        .join(dir)
}

/// Files of `dir` whose names end with `suffix`, sorted.
fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(dir))
        .unwrap_or_else(|error| panic!("cannot list {dir}: {error}"))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {suffix} files in {dir}");
    files
}

/// promtool on PATH or in /usr/bin; `None` (with the reason printed) outside CI.
fn promtool() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"));
    let found = on_path
        .chain(std::iter::once(PathBuf::from("/usr/bin/promtool")))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let reason = "promtool is not installed (apt-get install prometheus, or cargo xtask ci)";
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("the promtool comparison cannot run under CI=true: {reason}");
        }
        eprintln!("skipping the promtool comparison: {reason}");
    }
    found
}

/// What promtool said about `file`: whether it passed, and its standard error.
fn run_promtool(promtool: &Path, args: &[&str], file: &Path) -> (bool, String) {
    let output = Command::new(promtool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|error| panic!("cannot run promtool: {error}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// promtool's failures for one test file: its standard error without the `FAILED:` header,
/// one entry per failure.
fn promtool_failures(stderr: &str) -> Vec<String> {
    let body = stderr
        .lines()
        .filter(|line| line.trim() != "FAILED:" && !line.trim_start().starts_with("WARNING"))
        .collect::<Vec<_>>()
        .join("\n");
    vec![body.trim_end().to_owned()]
}

#[tokio::test]
async fn passing_tests_pass_in_both() {
    let promtool = promtool();
    for file in files("passing", ".test.yml") {
        let outcome = pharos_rules::run_test_file(&file).await;
        assert!(
            outcome.passed(),
            "{} failed in Pharos:\n{}",
            file.display(),
            outcome.failures.join("\n")
        );
        if let Some(promtool) = &promtool {
            let (passed, stderr) = run_promtool(promtool, &["test", "rules"], &file);
            assert!(passed, "{} failed in promtool:\n{stderr}", file.display());
        }
    }
}

#[tokio::test]
async fn failing_tests_fail_in_both_with_the_same_failures() {
    let promtool = promtool();
    for file in files("failing", ".test.yml") {
        let outcome = pharos_rules::run_test_file(&file).await;
        assert!(!outcome.passed(), "{} passed in Pharos", file.display());
        let Some(promtool) = &promtool else { continue };
        let (passed, stderr) = run_promtool(promtool, &["test", "rules"], &file);
        assert!(!passed, "{} passed in promtool", file.display());
        let ours = vec![outcome.failures.join("\n").trim_end().to_owned()];
        assert_eq!(
            ours,
            promtool_failures(&stderr),
            "{}: Pharos and promtool report different failures",
            file.display()
        );
    }
}

#[test]
fn valid_rule_files_are_accepted_by_both() {
    let promtool = promtool();
    for file in files("passing", ".rules.yml") {
        if let Err(invalid) = pharos_rules::load_rule_file(&file) {
            panic!("Pharos refused {}:\n{invalid}", file.display());
        }
        if let Some(promtool) = &promtool {
            let (passed, stderr) = run_promtool(promtool, &["check", "rules"], &file);
            assert!(passed, "promtool refused {}:\n{stderr}", file.display());
        }
    }
}

#[test]
fn invalid_rule_files_are_refused_by_both() {
    let promtool = promtool();
    for file in files("invalid", ".yml") {
        assert!(
            pharos_rules::load_rule_file(&file).is_err(),
            "Pharos accepted {}",
            file.display()
        );
        if let Some(promtool) = &promtool {
            let (passed, _) = run_promtool(promtool, &["check", "rules"], &file);
            assert!(!passed, "promtool accepted {}", file.display());
        }
    }
}
