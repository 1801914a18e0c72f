//! The security audit's flags (flattened into [`crate::runtime::config::Config`]).

use clap::Args;

/// The largest `--security-audit-retain`.
pub const MAX_RETAIN: u64 = 10_000_000;

/// Retention and write rate of the security audit.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Security audit")]
pub struct SecurityAuditConfig {
    /// How many abuse records the shared store keeps (the newest; older ones are dropped as
    /// new ones come), 1 to 10000000.
    #[arg(long, env = "SECURITY_AUDIT_RETAIN", default_value_t = 100_000)]
    pub security_audit_retain: u64,
    /// Each process writes at most one abuse record per reason, route and user (or client
    /// IP) in this many seconds (1 to 3600); further refusals in the window are counted,
    /// not written.
    #[arg(long, env = "SECURITY_AUDIT_WINDOW_SECS", default_value_t = 10)]
    pub security_audit_window_secs: u64,
}

impl SecurityAuditConfig {
    /// Checks the values; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_RETAIN).contains(&self.security_audit_retain) {
            return Err(format!("--security-audit-retain must be 1 to {MAX_RETAIN}"));
        }
        if !(1..=3_600).contains(&self.security_audit_window_secs) {
            return Err("--security-audit-window-secs must be 1 to 3600".into());
        }
        Ok(())
    }
}
