//! `cargo xtask pg`: a throwaway PostgreSQL from the machine's own initdb/pg_ctl, for people who
//! don't run one, and the check CI uses to make sure a server is reachable before the tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use xshell::{Shell, cmd};

/// The throwaway server listens here, beside (not instead of) a system PostgreSQL on 5432.
const PORT: u16 = 54329;

#[derive(Subcommand)]
pub enum Action {
    /// Initialise (first time) and start the throwaway server; prints its URL.
    Start,
    /// Stop it (the data stays for the next start).
    Stop,
    /// Say whether it runs.
    Status,
    /// Print the URL to put in PHAROS_TEST_DATABASE_URL or --database-url.
    Url,
}

pub fn run(sh: &Shell, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Start => {
            start(sh)?;
            println!("{}", url());
        }
        Action::Stop => {
            let layout = Layout::new(sh)?;
            layout.pg_ctl(sh, &["-m", "fast", "stop"])?;
        }
        Action::Status => {
            let layout = Layout::new(sh)?;
            if layout.pg_ctl(sh, &["status"]).is_err() {
                bail!("the throwaway PostgreSQL is not running: `cargo xtask pg start`");
            }
        }
        Action::Url => println!("{}", url()),
    }
    Ok(())
}

pub fn url() -> String {
    format!("postgres://postgres@127.0.0.1:{PORT}/postgres")
}

/// Makes sure the tests have a PostgreSQL: `PHAROS_TEST_DATABASE_URL` if set, else the system
/// server on 5432 (started with pg_ctlcluster when it is down), else the throwaway one.
/// Returns the URL to hand to the tests.
pub fn ensure_for_tests(sh: &Shell) -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("PHAROS_TEST_DATABASE_URL") {
        eprintln!("using PHAROS_TEST_DATABASE_URL={url}");
        return Ok(url);
    }
    let system = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
    if ready(sh, 5432) {
        eprintln!("PostgreSQL is up on 127.0.0.1:5432");
        return Ok(system);
    }
    if let Ok(versions) = std::fs::read_dir("/etc/postgresql") {
        for version in versions.flatten() {
            let version = version.file_name().to_string_lossy().into_owned();
            eprintln!("PostgreSQL is down on 5432: starting cluster {version}/main");
            let started = cmd!(
                sh,
                "pg_ctlcluster --skip-systemctl-redirect {version} main start"
            )
            .run()
            .is_ok();
            if started && wait_ready(sh, 5432, Duration::from_secs(30)) {
                return Ok(system);
            }
        }
    }
    eprintln!("no system PostgreSQL could be started: starting the throwaway one on {PORT}");
    start(sh)?;
    Ok(url())
}

fn start(sh: &Shell) -> anyhow::Result<()> {
    let layout = Layout::new(sh)?;
    if ready(sh, PORT) {
        eprintln!("the throwaway PostgreSQL already runs on {PORT}");
        return Ok(());
    }
    if !layout.data.join("PG_VERSION").exists() {
        eprintln!(
            "initialising a throwaway PostgreSQL in {}",
            layout.data.display()
        );
        layout.as_owner(
            sh,
            &layout.bin.join("initdb"),
            &[
                "-D",
                &layout.data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
    }
    let options = format!(
        "-p {PORT} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        layout.root.display()
    );
    let log = layout.root.join("server.log").display().to_string();
    layout.pg_ctl(sh, &["-o", &options, "-l", &log, "-w", "start"])?;
    if !wait_ready(sh, PORT, Duration::from_secs(30)) {
        bail!("the throwaway PostgreSQL did not become ready; see {log}");
    }
    Ok(())
}

fn ready(sh: &Shell, port: u16) -> bool {
    let port = port.to_string();
    cmd!(sh, "pg_isready -q -h 127.0.0.1 -p {port}")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn wait_ready(sh: &Shell, port: u16, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready(sh, port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// Where the throwaway server lives and who runs it. PostgreSQL refuses to run as root, so under
/// root it runs as the `postgres` user from a directory that user can reach.
struct Layout {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    owner: Option<String>,
}

impl Layout {
    fn new(sh: &Shell) -> anyhow::Result<Self> {
        let bin = find_bin_dir(sh)?;
        let is_root = cmd!(sh, "id -u").quiet().read()?.trim() == "0";
        let (root, owner) = if is_root {
            (
                PathBuf::from("/var/tmp/pharos-pg"),
                Some("postgres".to_owned()),
            )
        } else {
            (crate::cache_dir().join("pg"), None)
        };
        std::fs::create_dir_all(&root)?;
        if let Some(owner) = &owner {
            let dir = root.display().to_string();
            cmd!(sh, "chown {owner}: {dir}").quiet().run()?;
        }
        Ok(Self {
            data: root.join("data"),
            root,
            bin,
            owner,
        })
    }

    fn pg_ctl(&self, sh: &Shell, args: &[&str]) -> anyhow::Result<()> {
        let data = self.data.display().to_string();
        let mut full = vec!["-D", &data];
        full.extend_from_slice(args);
        self.as_owner(sh, &self.bin.join("pg_ctl"), &full)
    }

    fn as_owner(&self, sh: &Shell, program: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
        // The server's user may not be allowed into the caller's working directory.
        let _in_root = sh.push_dir(&self.root);
        let command = match &self.owner {
            Some(owner) => cmd!(sh, "runuser -u {owner} -- {program} {args...}"),
            None => cmd!(sh, "{program} {args...}"),
        };
        command
            .run()
            .with_context(|| format!("{} failed", program.display()))
    }
}

/// The newest PostgreSQL server binaries on the machine (Debian keeps them off PATH).
fn find_bin_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    if let Ok(dir) = cmd!(sh, "pg_config --bindir")
        .quiet()
        .ignore_stderr()
        .read()
    {
        let dir = PathBuf::from(dir.trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).context(
        "no initdb found: install PostgreSQL server binaries (Debian: apt-get install postgresql)",
    )
}
