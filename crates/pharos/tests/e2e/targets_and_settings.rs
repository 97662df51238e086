//! What `pharos serve` refuses and how it reads its settings: targets whose needs are not met
//! or unknown,
//! and settings layered from defaults, file, `PHAROS_*` environment and flags.

use std::process::Command;

use crate::support::BIN;

#[tokio::test]
async fn targets_that_cannot_run_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BIN)
        .args([
            "serve",
            "--target",
            "config,alert",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Alert evaluates with the query service: absent from the process and with no endpoint,
    // the start is refused with the setting to set.
    assert!(
        stderr.contains(
            "target `alert` needs the query service: run its target in this process or set alert.query_endpoint"
        ),
        "{stderr}"
    );
    let output = Command::new(BIN)
        .args(["serve", "--target", "everything"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown target"), "{stderr}");
}

#[tokio::test]
async fn settings_come_from_file_env_and_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pharos.toml");
    std::fs::write(
        &file,
        "[config.cache]\ncapacity = 7\n[server]\ngrpc_addr = \"127.0.0.1:6001\"\n",
    )
    .expect("write");
    let output = Command::new(BIN)
        .args(["settings", "--config"])
        .arg(&file)
        .args(["--grpc-addr", "127.0.0.1:6002"])
        .env("PHAROS_CONFIG__WATCH__BUFFER", "33")
        .env("PHAROS_HTTP_ADDR", "127.0.0.1:6003")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let settings: toml::Value = toml::from_str(&stdout).expect("toml");
    assert_eq!(
        settings["config"]["cache"]["capacity"].as_integer(),
        Some(7)
    );
    assert_eq!(settings["config"]["watch"]["buffer"].as_integer(), Some(33));
    assert_eq!(
        settings["server"]["grpc_addr"].as_str(),
        Some("127.0.0.1:6002")
    );
    assert_eq!(
        settings["server"]["http_addr"].as_str(),
        Some("127.0.0.1:6003")
    );

    let output = Command::new(BIN)
        .args(["settings"])
        .env("PHAROS_CONFIG__CACHE__CAPACTY", "1")
        .output()
        .expect("run");
    assert!(!output.status.success(), "a misspelt variable is an error");
}
