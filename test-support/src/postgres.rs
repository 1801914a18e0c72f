//! PostgreSQL: reaching the server, connections on a schema, and counting or dropping the
//! schemas of a name.
//!
//! The schemas of a name `n` are `n` itself and every schema starting with `n_` (a test
//! server keeps its app's tables in `<namespace>_app`, for example).

use sqlx::{Connection, PgConnection};

/// The schemas of `name` (see the module docs), in a query's `WHERE`.
const SCHEMAS_OF: &str = "nspname::text = $1 OR starts_with(nspname::text, $1 || '_')";

/// A connection of its own to `url`.
pub async fn connect(url: &str) -> sqlx::Result<PgConnection> {
    PgConnection::connect(url).await
}

/// A connection of its own to `url` with `search_path` set to `schema`, for statements a
/// library under test never runs (locking rows, breaking rules, killing backends).
pub async fn connect_in(url: &str, schema: &str) -> sqlx::Result<PgConnection> {
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .options([("search_path", schema)]);
    PgConnection::connect_with(&options).await
}

/// `schema` as a quoted identifier.
fn quoted(schema: &str) -> String {
    format!("\"{}\"", schema.replace('"', "\"\""))
}

/// Drops the schemas of `name` on the server at `url` (`DROP SCHEMA … CASCADE`, one at a
/// time); how many went. A schema that disappears meanwhile is fine (`IF EXISTS`).
pub async fn drop_schemas(url: &str, name: &str) -> sqlx::Result<u64> {
    let mut conn = connect(url).await?;
    let schemas: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT nspname::text FROM pg_namespace WHERE {SCHEMAS_OF} ORDER BY 1"
    ))
    .bind(name)
    .fetch_all(&mut conn)
    .await?;
    for schema in &schemas {
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quoted(schema)))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(schemas.len() as u64)
}

/// How many schemas of `name` exist on the server at `url`.
pub async fn count_schemas(url: &str, name: &str) -> sqlx::Result<u64> {
    let mut conn = connect(url).await?;
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM pg_namespace WHERE {SCHEMAS_OF}"
    ))
    .bind(name)
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
