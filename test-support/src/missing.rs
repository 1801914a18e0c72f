//! What a test does when something it needs is missing: a service fails the test (with how
//! to start it), everywhere; a tool fails it under CI and skips it, loudly, elsewhere.

use crate::service::{Service, is_ci};

/// What a test does about something missing, and the message it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The test fails with this message.
    Fail(String),
    /// The test is skipped: it prints this message and passes without testing.
    Skip(String),
}

impl Verdict {
    /// The message, whichever the verdict.
    pub fn message(&self) -> &str {
        match self {
            Self::Fail(m) | Self::Skip(m) => m,
        }
    }

    /// Carries the verdict out: panics with the message on [`Fail`](Self::Fail), prints
    /// `note: skipped: <message>` on standard error on [`Skip`](Self::Skip) (the caller then
    /// returns early).
    ///
    /// # Panics
    /// On [`Fail`](Self::Fail).
    #[track_caller]
    pub fn apply(self) {
        match self {
            Self::Fail(m) => panic!("{m}"),
            Self::Skip(m) => eprintln!("note: skipped: {m}"),
        }
    }
}

/// The note that ends a failure's message: under CI it is a failure by design; elsewhere
/// the reader learns the test will not be skipped either.
fn ci_note(ci: bool) -> &'static str {
    if ci {
        "CI=true: this is a failure, not a skip."
    } else {
        "These tests are never skipped silently."
    }
}

/// A service could not be reached. Tests that need a service never skip without it: the
/// verdict is [`Verdict::Fail`] in CI and elsewhere, and the message says how to start the
/// service (see [`Service::how_to_start`]).
#[derive(Debug, thiserror::Error)]
#[error("{service} is not reachable at {url}: {cause}")]
pub struct Unreachable {
    /// The service.
    pub service: Service,
    /// The URL tried.
    pub url: String,
    /// Why the connection failed.
    #[source]
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl Unreachable {
    /// The message for a test that needed the service: what failed, the command that starts
    /// the service, and whether this is CI (`ci`).
    pub fn message(&self, ci: bool) -> String {
        let service = self.service;
        format!(
            "{self}. These tests need a real {service}: start one with `{start}` (or \
             `docker compose up -d {compose}`), or point {var} at one. {note}",
            start = service.how_to_start(),
            compose = service.compose_service(),
            var = service.env_var(),
            note = ci_note(ci),
        )
    }

    /// Always [`Verdict::Fail`] (a missing service is never a reason to skip), with
    /// [`message`](Self::message).
    pub fn verdict(&self, ci: bool) -> Verdict {
        Verdict::Fail(self.message(ci))
    }

    /// Fails the test with [`message`](Self::message) for the current environment
    /// ([`is_ci`]).
    ///
    /// # Panics
    /// Always: that is its purpose.
    #[track_caller]
    pub fn fail(self) -> ! {
        panic!("{}", self.message(is_ci()))
    }
}

/// A tool (a browser, a driver, a benchmark binary) is not installed. Unlike a service, a
/// missing tool only fails the test under CI (which installs it); elsewhere the test is
/// skipped with a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MissingTool {
    message: String,
}

impl MissingTool {
    /// `message` says what is missing and how to install it, e.g. "the browser test needs
    /// /usr/bin/chromium (install with `apt-get install chromium chromium-driver`)".
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// [`Verdict::Fail`] under CI (`ci`), [`Verdict::Skip`] elsewhere.
    pub fn verdict(&self, ci: bool) -> Verdict {
        if ci {
            Verdict::Fail(format!("{} {}", self.message, ci_note(true)))
        } else {
            Verdict::Skip(self.message.clone())
        }
    }

    /// Applies [`verdict`](Self::verdict) for the current environment ([`is_ci`]): panics
    /// under CI, prints a note otherwise (the caller then skips its test).
    ///
    /// # Panics
    /// Under CI.
    #[track_caller]
    pub fn skip_or_fail(self) {
        self.verdict(is_ci()).apply();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Unreachable {
        Service::Redis.unreachable(
            "redis://127.0.0.1:1",
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )
    }

    #[test]
    fn a_missing_service_fails_in_ci_and_elsewhere_saying_how_to_start_it() {
        let e = refused();
        for ci in [true, false] {
            let Verdict::Fail(m) = e.verdict(ci) else {
                panic!("a missing service must never be skipped (ci = {ci})");
            };
            assert!(
                m.contains(r#"redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no"#),
                "{m}"
            );
            assert!(
                m.contains("redis://127.0.0.1:1") && m.contains("REDIS_URL"),
                "{m}"
            );
            let note = if ci {
                "CI=true: this is a failure, not a skip."
            } else {
                "never skipped silently"
            };
            assert!(m.contains(note), "{m}");
        }
        let pg = Service::Postgres.unreachable("postgres://x@127.0.0.1:1/test", "refused");
        assert!(
            pg.message(true).contains(
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            ),
            "{}",
            pg.message(true)
        );
    }

    #[test]
    #[should_panic(expected = "CI=true: this is a failure")]
    fn a_failed_verdict_panics() {
        refused().verdict(true).apply();
    }

    #[test]
    fn a_missing_tool_fails_in_ci_and_is_skipped_elsewhere() {
        let tool = MissingTool::new("the test needs /usr/bin/nothing");
        assert_eq!(
            tool.verdict(false),
            Verdict::Skip("the test needs /usr/bin/nothing".into())
        );
        let Verdict::Fail(m) = tool.verdict(true) else {
            panic!("CI installs its tools: a missing one fails");
        };
        assert!(m.starts_with("the test needs /usr/bin/nothing"), "{m}");
        // Skipping prints and returns.
        tool.verdict(false).apply();
    }
}
