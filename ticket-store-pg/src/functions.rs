//! The operations' PL/pgSQL functions: one file per operation in `sql/` (named as in
//! ticket-store-redis's `lua/`), shared helpers in `sql/lib/`, embedded at compile time
//! (build.rs lists the folder) and installed by [`PgStore::migrate`](crate::PgStore::migrate)
//! after the schema migrations.
//!
//! # When a file is applied
//! The table `_ticketrush_functions` records, per file, the SHA-256 of the text applied and
//! the names of the functions it created. A file is applied again only when its checksum
//! differs from the record (or it has none); a migrate that finds every checksum equal
//! writes nothing.
//!
//! # What is dropped
//! Before the changed files are applied, every function named by a changed file (in its new
//! text or in the record of its last application) or by a recorded file this build no longer
//! has is dropped, all overloads of the name in the store's schema. So a function removed,
//! renamed or given another signature leaves nothing behind, and one moved to another file
//! ends up defined once. No table, default or trigger may depend on a function of `sql/`
//! (trigger functions are schema and live in `migrations/`): `DROP FUNCTION` is not cascaded,
//! so such a dependency makes the install fail and change nothing.
//!
//! # Concurrency
//! One transaction does everything, after taking a transaction-scoped advisory lock keyed on
//! the schema name: the pattern of sqlx's migrator (`pg_advisory_lock` on a key derived from
//! the database name), scoped to the transaction so a lost connection cannot leave it held.
//! When two processes migrate at once, the second waits, then reads the records the first
//! committed and finds nothing to do. Callers see the old functions or the new ones, never a
//! mix: the whole change is one commit.

use sha2::{Digest, Sha256};
use sqlx::{Executor, PgPool, Row};

/// One embedded file of `sql/`.
#[derive(Debug)]
pub(crate) struct SqlFile {
    /// Its path under `sql/`, with `/` separators (`lib/base.sql`, `hold.sql`).
    pub(crate) name: &'static str,
    /// Its text: `CREATE OR REPLACE FUNCTION` statements and comments.
    pub(crate) text: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/sql_files.rs"));

/// Why the functions could not be installed. Nothing was changed: the install is one
/// transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum InstallError {
    /// Reading or writing the records, locking or dropping failed.
    #[error("installing the SQL functions: {0}")]
    Database(#[source] sqlx::Error),
    /// PostgreSQL refused a file of `sql/`.
    #[error("applying sql/{file}: {source}")]
    Apply {
        /// The file, as named under `sql/`.
        file: &'static str,
        /// What PostgreSQL answered.
        #[source]
        source: sqlx::Error,
    },
}

impl From<sqlx::Error> for InstallError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// What the records say about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    file: String,
    checksum: Vec<u8>,
    functions: Vec<String>,
}

/// A file to apply, with what will be recorded for it.
#[derive(Debug)]
struct Pending<'a> {
    file: &'a SqlFile,
    checksum: [u8; 32],
    functions: Vec<String>,
}

/// The changes that bring the records (and the schema's functions) in line with `files`.
#[derive(Debug, Default)]
struct Plan<'a> {
    /// Function names to drop before applying, sorted, each once.
    drop: Vec<String>,
    /// Files to apply, in the order given.
    apply: Vec<Pending<'a>>,
    /// Recorded files this build does not have.
    forget: Vec<String>,
}

impl Plan<'_> {
    fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.apply.is_empty() && self.forget.is_empty()
    }
}

fn plan<'a>(files: &'a [SqlFile], recorded: &[Recorded]) -> Plan<'a> {
    let mut plan = Plan::default();
    for file in files {
        let checksum: [u8; 32] = Sha256::digest(file.text.as_bytes()).into();
        let before = recorded.iter().find(|r| r.file == file.name);
        if before.is_some_and(|r| r.checksum == checksum) {
            continue;
        }
        let functions = function_names(file.text);
        plan.drop.extend(functions.iter().cloned());
        if let Some(before) = before {
            plan.drop.extend(before.functions.iter().cloned());
        }
        plan.apply.push(Pending {
            file,
            checksum,
            functions,
        });
    }
    for gone in recorded
        .iter()
        .filter(|r| !files.iter().any(|f| f.name == r.file))
    {
        plan.drop.extend(gone.functions.iter().cloned());
        plan.forget.push(gone.file.clone());
    }
    plan.drop.sort();
    plan.drop.dedup();
    plan
}

/// The functions a file creates: the names of its `CREATE OR REPLACE FUNCTION` statements
/// (each at the start of a line), folded to lower case as PostgreSQL folds them.
fn function_names(text: &str) -> Vec<String> {
    const CREATE: &str = "CREATE OR REPLACE FUNCTION ";
    text.lines()
        .filter_map(|line| line.strip_prefix(CREATE))
        .filter_map(|rest| rest.split('(').next())
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The advisory lock key of the installer in `schema`: the first 8 bytes of a SHA-256 of the
/// schema name, as sqlx derives its migrator's key from the database name.
fn lock_key(schema: &str) -> i64 {
    let digest = Sha256::digest(format!("ticket-store-pg functions in {schema}").as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// Brings the functions of `schema` in line with the embedded `sql/` files, as the module
/// docs describe. `pool`'s connections must have `schema` first on their `search_path` and
/// the schema migrations applied. Returns the names of the files applied (empty when nothing
/// changed).
pub(crate) async fn install(
    pool: &PgPool,
    schema: &str,
) -> Result<Vec<&'static str>, InstallError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(schema))
        .execute(&mut *tx)
        .await?;
    // read after the lock: a concurrent installer's records are committed by now
    let recorded: Vec<Recorded> =
        sqlx::query("SELECT file, checksum, functions FROM _ticketrush_functions")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|row| {
                Ok(Recorded {
                    file: row.try_get("file")?,
                    checksum: row.try_get("checksum")?,
                    functions: row.try_get("functions")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
    let plan = plan(SQL_FILES, &recorded);
    if plan.is_empty() {
        tx.rollback().await?;
        return Ok(Vec::new());
    }
    let signatures: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = $1 AND p.proname = ANY ($2) AND p.prokind = 'f'",
    )
    .bind(schema)
    .bind(&plan.drop)
    .fetch_all(&mut *tx)
    .await?;
    for signature in &signatures {
        // a regprocedure's text is a quoted, resolvable signature
        // `Executor::execute`, not `RawSql::execute`: the latter's generic executor makes
        // this future not `Send` for every lifetime, so `migrate()` could not be spawned
        let drop = format!("DROP FUNCTION {signature}");
        (&mut *tx).execute(sqlx::raw_sql(&drop)).await?;
    }
    for pending in &plan.apply {
        (&mut *tx)
            .execute(sqlx::raw_sql(pending.file.text))
            .await
            .map_err(|source| InstallError::Apply {
                file: pending.file.name,
                source,
            })?;
        sqlx::query(
            "INSERT INTO _ticketrush_functions (file, checksum, functions) VALUES ($1, $2, $3)
             ON CONFLICT (file) DO UPDATE
                SET checksum = EXCLUDED.checksum, functions = EXCLUDED.functions,
                    applied_at = now()",
        )
        .bind(pending.file.name)
        .bind(&pending.checksum[..])
        .bind(&pending.functions)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM _ticketrush_functions WHERE file = ANY ($1)")
        .bind(&plan.forget)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let applied: Vec<&'static str> = plan.apply.iter().map(|p| p.file.name).collect();
    tracing::info!(
        schema,
        applied = ?applied,
        dropped = ?plan.drop,
        forgotten = ?plan.forget,
        "installed the SQL functions"
    );
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(file: &SqlFile) -> Recorded {
        Recorded {
            file: file.name.to_owned(),
            checksum: Sha256::digest(file.text.as_bytes()).to_vec(),
            functions: function_names(file.text),
        }
    }

    #[test]
    fn every_file_is_embedded_lib_first() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
        let mut on_disk = 0;
        for dir in [root.to_owned(), format!("{root}/lib")] {
            for entry in std::fs::read_dir(dir).expect("sql/") {
                let name = entry.expect("entry").file_name();
                on_disk += usize::from(name.to_string_lossy().ends_with(".sql"));
            }
        }
        assert_eq!(SQL_FILES.len(), on_disk);
        let lib = SQL_FILES.iter().take_while(|f| f.name.starts_with("lib/"));
        assert_eq!(
            lib.count(),
            SQL_FILES
                .iter()
                .filter(|f| f.name.starts_with("lib/"))
                .count()
        );
    }

    #[test]
    fn files_create_only_functions_each_named_once() {
        let mut all = Vec::new();
        for file in SQL_FILES {
            let names = function_names(file.text);
            assert!(!names.is_empty(), "{} creates no function", file.name);
            for line in file.text.lines() {
                let upper = line.trim_start().to_ascii_uppercase();
                if ["CREATE", "DROP", "ALTER"]
                    .iter()
                    .any(|w| upper.starts_with(w))
                {
                    assert!(
                        line.starts_with("CREATE OR REPLACE FUNCTION "),
                        "{}: schema changes belong in migrations/: {line}",
                        file.name
                    );
                }
            }
            for name in &names {
                assert!(name.starts_with("tr_"), "{}: {name}", file.name);
            }
            all.extend(names);
        }
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "a function is defined in two files");
    }

    #[test]
    fn function_names_are_read_from_create_lines() {
        let text = "-- CREATE OR REPLACE FUNCTION tr_not_this()\n\
                    CREATE OR REPLACE FUNCTION tr_a(x int) RETURNS int\n\
                    CREATE OR REPLACE FUNCTION TR_B (y int)\n";
        assert_eq!(function_names(text), ["tr_a", "tr_b"]);
    }

    #[test]
    fn nothing_to_do_when_every_checksum_matches() {
        let all: Vec<Recorded> = SQL_FILES.iter().map(recorded).collect();
        assert!(plan(SQL_FILES, &all).is_empty());
    }

    #[test]
    fn a_fresh_schema_applies_every_file_in_order() {
        let p = plan(SQL_FILES, &[]);
        let names: Vec<_> = p.apply.iter().map(|a| a.file.name).collect();
        let expected: Vec<_> = SQL_FILES.iter().map(|f| f.name).collect();
        assert_eq!(names, expected);
        assert!(p.forget.is_empty());
    }

    #[test]
    fn a_changed_file_is_applied_alone_after_dropping_old_and_new_names() {
        let files = [
            SqlFile {
                name: "a.sql",
                text: "CREATE OR REPLACE FUNCTION tr_a2() RETURNS int\n",
            },
            SqlFile {
                name: "b.sql",
                text: "CREATE OR REPLACE FUNCTION tr_b() RETURNS int\n",
            },
        ];
        let mut before: Vec<Recorded> = files.iter().map(recorded).collect();
        before[0].checksum = vec![0; 32];
        before[0].functions = vec!["tr_a".into(), "tr_a_helper".into()];
        let p = plan(&files, &before);
        assert_eq!(p.drop, ["tr_a", "tr_a2", "tr_a_helper"]);
        assert_eq!(p.apply.len(), 1);
        assert_eq!(p.apply[0].file.name, "a.sql");
        assert_eq!(p.apply[0].functions, ["tr_a2"]);
        assert!(p.forget.is_empty());
    }

    #[test]
    fn a_removed_file_has_its_functions_dropped_and_its_record_forgotten() {
        let files = [SqlFile {
            name: "b.sql",
            text: "CREATE OR REPLACE FUNCTION tr_b() RETURNS int\n",
        }];
        let mut before: Vec<Recorded> = files.iter().map(recorded).collect();
        before.push(Recorded {
            file: "gone.sql".into(),
            checksum: vec![1; 32],
            functions: vec!["tr_gone".into()],
        });
        let p = plan(&files, &before);
        assert_eq!(p.drop, ["tr_gone"]);
        assert!(p.apply.is_empty());
        assert_eq!(p.forget, ["gone.sql"]);
    }

    #[test]
    fn lock_keys_differ_per_schema() {
        assert_eq!(lock_key("ticketrush"), lock_key("ticketrush"));
        assert_ne!(lock_key("ticketrush"), lock_key("tr_test_1"));
    }
}
