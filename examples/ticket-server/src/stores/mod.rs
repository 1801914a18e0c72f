//! The app's own stores, beside the library's: each store is a trait with a memory, a Redis
//! and a PostgreSQL implementation, laid out the same way (`<store>/mod.rs` the trait and its
//! types, `memory.rs`, `redis.rs` with its scripts in `lua/*.lua`, `pg.rs` with its queries
//! in `sql/*.sql`).
//!
//! On PostgreSQL every store keeps its tables in the app's schema (`<namespace>_app`), made
//! by one set of sqlx migrations (`migrations/*.sql` of this crate, [`migrate`]): any store's
//! `migrate()` brings the whole schema up to date.

pub mod accounts;
pub mod inbox;
pub mod security_audit;
pub(crate) mod support;
pub mod throttle;
pub mod wallet;

/// The app's PostgreSQL migrations (`migrations/*.sql` of this crate), embedded at compile
/// time: every table of every app store, in one numbered sequence.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates `schema` if needed and applies the app's migrations ([`MIGRATOR`]) not applied to
/// it yet, recorded in the schema's own `_sqlx_migrations` table. `pool`'s connections must
/// have `search_path` set to `schema` (as every app store's pool has). Idempotent, and safe
/// from several processes at once: sqlx holds an advisory lock while it migrates, and a lost
/// race to create the schema is no error. Every app store's `migrate()` calls this, so
/// migrating any one of them brings the whole schema up to date.
pub async fn migrate(pool: &sqlx::PgPool, schema: &str) -> sqlx::Result<()> {
    support::pg::check_schema(schema).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    if let Err(e) = sqlx::query(&create).execute(pool).await
        && !support::pg::is_code(&e, &["23505", "42P06"])
    {
        return Err(e);
    }
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => e,
        other => sqlx::Error::Migrate(Box::new(other)),
    })
}
