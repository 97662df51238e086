//! The services this build of Pharos has: one registration each. A new service is its crate
//! and one line here; `serve`, `pharos targets` and the target checks follow from this list.

use pharos_api::Registry;

use crate::settings::Settings;

/// Every service, each with its section of the settings.
pub fn registry(settings: &Settings) -> Registry {
    let mut registry = Registry::new();
    registry
        .register(pharos_config::ConfigModule::new(settings.config.clone()))
        .register(pharos_ingest::IngestModule::new(settings.ingest.clone()))
        .register(pharos_query::QueryModule::new(settings.query.clone()))
        .register(pharos_search::SearchModule::new(settings.search.clone()))
        .register(pharos_alert::AlertModule::new(settings.alert.clone()));
    registry
}
