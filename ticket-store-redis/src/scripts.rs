//! The Lua code, as one Redis function library: loaded once per library version
//! (`FUNCTION LOAD`) and called by name (`FCALL`).
//!
//! The library's name and every function's name carry a hash of the library's source, so
//! two versions of this crate on one Redis each load their own library and never call the
//! other's code. A server that lost the library (`FUNCTION FLUSH`, `FLUSHALL`, a restart
//! without persistence) answers "Function not found": the call loads the library and runs
//! once more (see [`crate::store::RedisStore::run`]).
//!
//! Session functions are the shared files of `lua/lib/` (loaded once, with the library)
//! and the body of their own file, run as `begin(KEYS, ARGV)` and then the body: `begin`
//! resets every per-call cache of the shared files, which a library keeps between calls.

use std::sync::OnceLock;

use redis::{Cmd, RedisError, ToRedisArgs};

/// The shared files, in order (each may use what the earlier ones define).
const SHARED: &str = concat!(
    include_str!("../lua/lib/base.lua"),
    "\n",
    include_str!("../lua/lib/holds.lua"),
    "\n",
    include_str!("../lua/lib/stock.lua"),
    "\n",
    include_str!("../lua/lib/tickets.lua"),
    "\n",
    include_str!("../lua/lib/feed.lua"),
    "\n",
    include_str!("../lua/lib/commit.lua"),
    "\n",
);

/// What a function is: a session function starts with `begin` (KEYS[1] the session's key
/// base, ARGV[1] the feed's retention, ARGV[2] the key prefix); a standalone one is its file
/// alone. A read-only function is flagged `no-writes` (Redis refuses any write it tries).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Session,
    SessionReadOnly,
    Standalone,
}

/// Placeholder for the version in the source, replaced by the hash of the whole source.
const VERSION_MARK: &str = "@V@";

/// One function of the library, called by [`Call`].
#[derive(Debug)]
pub(crate) struct Function {
    name: String,
}

impl Function {
    /// The registered name (`tr_<version>_<file>`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// One `FCALL` of a function with one key (every function of this crate takes exactly one:
/// the session's key base or the one key it works on).
pub(crate) struct Call {
    cmd: Cmd,
}

impl Call {
    /// `FCALL <function> 1 <key>`; add the arguments with [`Call::arg`].
    pub(crate) fn new<K: ToRedisArgs>(function: &Function, key: K) -> Self {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(function.name()).arg(1).arg(key);
        Self { cmd }
    }

    /// Appends an argument (ARGV).
    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// The command, ready to send.
    pub(crate) fn cmd(&self) -> &Cmd {
        &self.cmd
    }

    /// The command, for a pipeline.
    pub(crate) fn into_cmd(self) -> Cmd {
        self.cmd
    }
}

/// Loading the library failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LibraryError {
    /// Redis refused `FUNCTION LOAD` (or could not be reached) for this library.
    #[error("FUNCTION LOAD of the Lua library {library}: {source}")]
    Load {
        library: String,
        #[source]
        source: RedisError,
    },
}

/// The library source and its name, built once per process.
struct Source {
    library: String,
    version: String,
    text: String,
}

macro_rules! functions {
    ($($field:ident: $kind:ident),* $(,)?) => {
        /// Every function of the backend, and the library that registers them.
        pub(crate) struct Scripts {
            /// The library's name (`ticketrush_<version>`).
            pub(crate) library: &'static str,
            /// The library's source, as `FUNCTION LOAD` takes it.
            pub(crate) source: &'static str,
            $(pub(crate) $field: Function,)*
        }

        fn bodies() -> Vec<(&'static str, Kind, &'static str)> {
            vec![$((
                stringify!($field),
                Kind::$kind,
                include_str!(concat!("../lua/", stringify!($field), ".lua")),
            ),)*]
        }

        impl Scripts {
            pub(crate) fn new() -> Self {
                let source = source();
                Self {
                    library: &source.library,
                    source: &source.text,
                    $($field: Function {
                        name: function_name(&source.version, stringify!($field)),
                    },)*
                }
            }
        }
    };
}

functions! {
    create_session: Session,
    drop_session: Session,
    snapshot: SessionReadOnly,
    hold: Session,
    transition: Session,
    check_in: Session,
    rebook: Session,
    expire: Session,
    hold_read: SessionReadOnly,
    paying_read: SessionReadOnly,
    audit_page: SessionReadOnly,
    feed_read: SessionReadOnly,
    line_read: SessionReadOnly,
    delivery_claim: Standalone,
    delivery_finish: Standalone,
    checkpoint: Standalone,
    lease: Standalone,
    join: Session,
    view: Session,
    admit: Session,
    leave: Session,
    stats: Session,
    draw_read: SessionReadOnly,
    draw_commit: Session,
    idempotency: Standalone,
    claim_ids: Standalone,
    sale_state: Session,
    capacity: Session,
}

fn function_name(version: &str, file: &str) -> String {
    format!("tr_{version}_{file}")
}

/// The library source, built and hashed once per process.
fn source() -> &'static Source {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let mut text = format!("#!lua name=ticketrush_{VERSION_MARK}\n{SHARED}");
        for (file, kind, body) in bodies() {
            let (begin, flags) = match kind {
                Kind::Session => ("begin(KEYS, ARGV)\n", ""),
                Kind::SessionReadOnly => ("begin(KEYS, ARGV)\n", ", flags = { 'no-writes' }"),
                Kind::Standalone => ("", ""),
            };
            text.push_str(&format!(
                "redis.register_function{{ function_name = '{}', callback = function(KEYS, ARGV)\n\
                 {begin}{body}\nend{flags} }}\n",
                function_name(VERSION_MARK, file),
            ));
        }
        // The SHA-1 of the source (as Redis would name it as a script), shortened: the
        // version of the library, in its name and every function's.
        let hash = redis::Script::new(&text).get_hash().to_owned();
        let version = hash.get(..16).unwrap_or(&hash).to_owned();
        Source {
            library: format!("ticketrush_{version}"),
            text: text.replace(VERSION_MARK, &version),
            version,
        }
    })
}

/// Whether a call failed because the server does not have the function (the library was
/// never loaded there, or flushed, or the server restarted without it).
pub(crate) fn function_missing(e: &RedisError) -> bool {
    e.to_string().contains("Function not found")
}

/// Whether `FUNCTION LOAD` failed because this library (same name, so same source) is
/// loaded already: another process or connection loaded it first.
fn already_loaded(e: &RedisError) -> bool {
    e.to_string().contains("already exists")
}

/// Loads the library on the server behind `conn`, unless it is there already.
pub(crate) async fn load_library<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
) -> Result<(), LibraryError> {
    match redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(scripts.source)
        .exec_async(conn)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if already_loaded(&e) => Ok(()),
        Err(source) => Err(LibraryError::Load {
            library: scripts.library.to_owned(),
            source,
        }),
    }
}
