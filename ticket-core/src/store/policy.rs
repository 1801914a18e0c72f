use async_trait::async_trait;

use crate::error::Result;
use crate::ids::SessionId;
use crate::model::policy::SalesPolicy;

/// Sales policies, one per session, as data.
///
/// Guarantees: a policy written with [`SalesPolicyStore::set_policy`] is what every later
/// [`SalesPolicyStore::policy`] call returns (read-your-writes, last writer wins); a session
/// without a stored policy gets [`SalesPolicy::default`].
#[async_trait]
pub trait SalesPolicyStore: Send + Sync {
    /// The session's policy (the default when none was set); `NotFound` for an unknown session.
    async fn policy(&self, session: SessionId) -> Result<SalesPolicy>;

    /// Replaces the session's policy. The caller validates it first (the services do).
    async fn set_policy(&self, session: SessionId, policy: &SalesPolicy) -> Result<()>;
}
