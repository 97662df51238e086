//! `cargo xtask tidy`: source checks that need no build, in the spirit of rust-analyzer's tidy
//! test: every Rust file opens with a `//!` doc, and no `dbg!` or `#[ignore]` lands.

use std::path::{Path, PathBuf};

use anyhow::bail;

pub fn run(root: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        collect_rust_files(&root.join(dir), &mut files)?;
    }
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        if !text.starts_with("//!") {
            problems.push(format!(
                "{shown}: line 1 must be a `//!` doc saying what lives here"
            ));
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.contains(concat!("dbg", "!(")) {
                problems.push(format!("{shown}:{}: remove dbg!", number + 1));
            }
            if code.starts_with(concat!("#[", "ignore")) {
                problems.push(format!(
                    "{shown}:{}: #[ignore] hides a test; fix it or delete it",
                    number + 1
                ));
            }
        }
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("tidy: {problem}");
        }
        bail!("tidy found {} problem(s)", problems.len());
    }
    eprintln!("tidy: {} Rust files clean", files.len());
    Ok(())
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "node_modules" {
                collect_rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}
