//! The sweeper: expires holds past their TTL and wakes the queues they return units to.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::model::hold::Hold;

use super::{AdmissionService, Context};

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Holds this sweep expired (each hold is expired by exactly one sweep, ever).
    pub expired: Vec<Hold>,
    /// Users admitted because units came back.
    pub admitted: usize,
}

/// Expires due holds. Run it on a timer on any number of servers: claims are atomic in the
/// store, so units come back exactly once.
#[derive(Clone, Debug)]
pub struct ExpiryService {
    ctx: Context,
    admission: AdmissionService,
}

impl ExpiryService {
    pub(crate) fn new(ctx: Context, admission: AdmissionService) -> Self {
        Self { ctx, admission }
    }

    /// Expires up to `limit` due holds, then runs an admission round in each session that got
    /// units back.
    pub async fn sweep(&self, limit: usize) -> Result<SweepReport> {
        let now = self.ctx.clock.now();
        let expired = self.ctx.stores.reservations.expire_due(now, limit).await?;
        let sessions: BTreeSet<_> = expired.iter().map(|h| h.session).collect();
        let mut admitted = 0;
        for s in sessions {
            admitted += self.admission.admit_next(s).await?.admitted.len();
        }
        Ok(SweepReport { expired, admitted })
    }
}
