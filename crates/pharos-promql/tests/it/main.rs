//! The PromQL engine's integration tests: a conformance suite that asks the engine and a real
//! Prometheus 2.42 the same queries (`queries.txt`) over the same data (`dataset`) and reports
//! every answer that differs, compared as Prometheus' own compliance tester compares them.
//!
//! Run it with `cargo test -p pharos-promql --test it -- --nocapture` to see the report. It
//! needs `prometheus` and `promtool` (Debian's `prometheus` package, which `cargo xtask ci`
//! installs); without them it is skipped with a printed reason, except under `CI=true`.

mod conformance;
mod dataset;
mod harness;
mod prometheus;
