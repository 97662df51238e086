//! `pharos rules test FILE...` and `pharos rules check FILE...`: promtool's `test rules` and
//! `check rules`, run by Pharos' own rule engine, printing what promtool prints and exiting
//! non-zero when a file fails, so existing rule test files and CI steps work unchanged.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Run rule unit tests written for `promtool test rules`.
    Test {
        /// Test files (YAML, promtool's format; rule files relative to each).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check rule files as `promtool check rules` does.
    Check {
        /// Rule files (Prometheus rule-group YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub async fn run_rules(args: RulesArgs) -> anyhow::Result<()> {
    match args.command {
        RulesCommand::Test { files } => test_files(&files).await,
        RulesCommand::Check { files } => check_files(&files),
    }
}

async fn test_files(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in files {
        println!("Unit Testing:  {}", file.display());
        let outcome = pharos_rules::run_test_file(file).await;
        for warning in &outcome.warnings {
            eprintln!("  WARNING: {warning}");
        }
        if outcome.passed() {
            println!("  SUCCESS");
        } else {
            failed += 1;
            eprintln!("  FAILED:");
            for failure in &outcome.failures {
                eprintln!("{failure}");
                println!();
            }
        }
        println!();
    }
    if failed > 0 {
        bail!("{failed} of {} rule test files failed", files.len());
    }
    Ok(())
}

fn check_files(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in files {
        println!("Checking {}", file.display());
        match pharos_rules::load_rule_file(file) {
            Ok(groups) => {
                let rules: usize = groups.iter().map(|group| group.rules.len()).sum();
                println!("  SUCCESS: {rules} rules found");
            }
            Err(invalid) => {
                failed += 1;
                eprintln!("  FAILED:");
                eprintln!("{invalid}");
            }
        }
        println!();
    }
    if failed > 0 {
        bail!("{failed} of {} rule files are not valid", files.len());
    }
    Ok(())
}
