//! The `pharos` process: settings, the registry of services ([`modules`]) and [`serve::run`],
//! which starts the enabled services on one gRPC listener and one HTTP listener. The
//! binary (`main.rs`) only parses arguments and calls into this library, so
//! tests start the very same server in-process.

pub mod alert_cli;
pub mod cli;
pub mod health_cli;
pub mod loadgen;
pub mod modules;
pub mod query_cli;
pub mod rules_cli;
pub mod search_cli;
pub mod serve;
pub mod settings;

pub use pharos_api::Target;
pub use serve::run;
pub use settings::Settings;
