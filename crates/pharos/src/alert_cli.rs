//! `pharos alert check-config FILE...`: reads Alertmanager configuration files as the alert
//! service reads its `alert.routing_file` (Alertmanager 0.25's format and checks, with the
//! receivers Pharos delivers to), and prints what `amtool check-config` prints for each.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub command: AlertCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Check Alertmanager configuration files (route tree, receivers, inhibit rules, time
    /// intervals) as the alert service would load them.
    CheckConfig {
        /// Alertmanager configuration files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub async fn run_alert(args: AlertArgs) -> anyhow::Result<()> {
    match args.command {
        AlertCommand::CheckConfig { files } => check_config(&files),
    }
}

fn check_config(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in files {
        print!("Checking '{}'", file.display());
        match pharos_routing::load_config(file) {
            Ok(config) => {
                println!("  SUCCESS");
                println!("Found:");
                println!(" - global config");
                println!(" - route");
                println!(" - {} inhibit rules", config.inhibit_rules().len());
                println!(" - {} receivers", config.receivers().len());
                println!(" - {} templates", config.templates().len());
            }
            Err(error) => {
                failed += 1;
                println!("  FAILED: {error}");
            }
        }
        println!();
    }
    if failed > 0 {
        bail!(
            "{failed} of {} configuration files are not valid",
            files.len()
        );
    }
    Ok(())
}
