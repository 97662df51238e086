//! `pharos search` against a search-only process: vectors read from every input format
//! (including NumPy `.npy`), indexes created, queried and answered.

use std::path::Path;

use crate::support::{Process, cli_of};

/// `rows` as a NumPy `.npy` file of float32 (format 1.0).
fn write_npy(path: &Path, rows: &[Vec<f32>]) {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        rows.len(),
        rows[0].len()
    )
    .into_bytes();
    let padding = (64 - (10 + header.len() + 1) % 64) % 64;
    header.extend(std::iter::repeat_n(b' ', padding));
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header);
    bytes.extend(rows.iter().flatten().flat_map(|value| value.to_le_bytes()));
    std::fs::write(path, bytes).expect("write .npy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_cli_reads_every_format_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Process::spawn(dir.path(), &["--target", "search"]);
    server.wait_serving().await;
    let endpoint = server.endpoint();
    let search = |args: &[&str]| {
        let (ok, out, err) = cli_of("search", &endpoint, args);
        assert!(ok, "pharos search {args:?} failed: {err}");
        out
    };
    search(&["create", "docs", "--dimension", "4", "--metric", "l2"]);
    // Rows 0..100 from .npy, 1000.. from .fvecs, one by id from JSON lines with a payload.
    let rows: Vec<Vec<f32>> = (0..100).map(|i| vec![i as f32, 0.0, 0.0, 1.0]).collect();
    write_npy(&dir.path().join("rows.npy"), &rows);
    let mut fvecs = Vec::new();
    for i in 0..10 {
        fvecs.extend(4i32.to_le_bytes());
        for value in [i as f32 + 0.5, 1.0, 0.0, 1.0] {
            fvecs.extend(value.to_le_bytes());
        }
    }
    std::fs::write(dir.path().join("rows.fvecs"), fvecs).expect("write .fvecs");
    std::fs::write(
        dir.path().join("rows.jsonl"),
        "{\"id\": 5000, \"values\": [50, 50, 50, 50], \"payload\": {\"colour\": \"red\"}}\n",
    )
    .expect("write .jsonl");
    let npy = dir.path().join("rows.npy").display().to_string();
    let fvecs = dir.path().join("rows.fvecs").display().to_string();
    let jsonl = dir.path().join("rows.jsonl").display().to_string();
    assert!(search(&["upsert", "docs", &npy]).contains("upserted 100 vectors"));
    assert!(
        search(&["upsert", "docs", &fvecs, "--start-id", "1000"]).contains("upserted 10 vectors")
    );
    assert!(search(&["upsert", "docs", &jsonl]).contains("upserted 1 vectors"));

    // The two nearest ids to one query, asked through the CLI of the server at `endpoint`.
    let nearest_two = |endpoint: &str| -> Vec<u64> {
        let (ok, out, err) = cli_of(
            "search",
            endpoint,
            &[
                "query",
                "docs",
                "--vector",
                "3.4,1,0,1",
                "-k",
                "2",
                "--json",
            ],
        );
        assert!(ok, "pharos search query failed: {err}");
        let hits: serde_json::Value = serde_json::from_str(&out).expect("json hits");
        hits.as_array()
            .expect("array")
            .iter()
            .map(|hit| hit["id"].as_u64().expect("id"))
            .collect()
    };
    assert_eq!(nearest_two(&endpoint), [1003, 1002]);
    let filtered = search(&[
        "query",
        "docs",
        "--vector",
        "0,0,0,0",
        "--filter",
        "colour=red|blue",
    ]);
    assert!(
        filtered.contains("id 5000") && filtered.contains("colour=red"),
        "{filtered}"
    );

    let described: serde_json::Value =
        serde_json::from_str(&search(&["describe", "docs", "--json"])).expect("json");
    assert_eq!(described["index"]["count"], 111);
    assert_eq!(described["latency"]["searches"], 2);
    let listed = search(&["list"]);
    assert!(
        listed.contains("docs  flat  dimension 4  l2  111 vectors"),
        "{listed}"
    );

    // Bad input: the server's reason reaches the person.
    let (ok, _, err) = cli_of("search", &endpoint, &["query", "docs", "--vector", "1,2"]);
    assert!(!ok);
    assert!(
        err.contains("has 2 values") && err.contains("dimension 4"),
        "{err}"
    );
    let (ok, _, err) = cli_of("search", &endpoint, &["upsert", "docs", "rows.csv"]);
    assert!(!ok && err.contains("--format npy|fvecs|jsonl"), "{err}");
    server.terminate();

    // Stopping wrote a snapshot to the data directory; the next start reads it.
    assert!(dir.path().join("data/search/manifest.json").is_file());
    let server = Process::spawn(dir.path(), &["--target", "search"]);
    server.wait_serving().await;
    let log = server.log();
    assert!(log.contains("indexes read from the snapshot"), "{log}");
    assert!(log.contains("indexes pre-warmed"), "{log}");
    assert_eq!(nearest_two(&server.endpoint()), [1003, 1002]);
    server.terminate();
}
