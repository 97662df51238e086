//! A PostgreSQL database of the benchmark's own, created fresh for a run and dropped after it.

use anyhow::Context;
use sqlx::Connection;

/// A database of its own on the given server (named after this process, so runs side by side
/// never share one), dropped at the end.
pub struct BenchDatabase {
    name: String,
    admin_url: String,
    pub url: String,
    pub server_version: String,
}

impl BenchDatabase {
    pub async fn create(admin_url: &str, area: &str) -> anyhow::Result<Self> {
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| {
                format!("cannot reach PostgreSQL at {admin_url}: start it or pass --database-url")
            })?;
        // The name is ours (a fixed prefix, an area name from this crate and a number), never input, so formatting it is safe.
        let name = format!("pharos_bench_{area}_{}", std::process::id());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        let server_version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut admin)
            .await?;
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url, ""), |(base, query)| (base, query));
        let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
        let mut url = format!("{root}/{name}");
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        Ok(Self {
            name,
            admin_url: admin_url.to_owned(),
            url,
            server_version,
        })
    }

    pub async fn drop_it(&self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&mut admin)
                .await;
        }
    }
}
