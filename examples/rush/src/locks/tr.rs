//! ticketrush itself: `HoldService::hold` of one unit by a new user per attempt, on a
//! one-session general-admission event, on ticket-store-pg or ticket-store-redis. The hold
//! is the unit taken (and its row the order); no confirm follows.

use std::sync::Arc;

use ticket_core::model::hold::Selection;
use ticket_core::model::inventory::Grade;
use ticket_core::service::HoldCommand;
use ticket_core::{Clock, Error, Refusal, SessionId, SystemClock, TicketRush, TimeLimits, UserId};

use super::drive::{Attempt, Books, Contender, Location};
use super::{LocksError, Strategy, Workload};
use crate::backend::Backend;
use crate::config::{Config, StoreKind};

/// One session on sale through the library, on its backend.
pub(crate) struct Ticketrush {
    backend: Backend,
    rush: TicketRush,
    session: SessionId,
    grade: Grade,
}

impl Ticketrush {
    /// Connects under a fresh schema or prefix (the rush simulator's [`Backend`]) and puts
    /// one session of `units` units on sale: no admission needed, 4 units per user (each
    /// attempt is a new user, so the limit never refuses).
    pub(crate) async fn create(strategy: Strategy, w: &Workload) -> Result<Self, LocksError> {
        let store = match strategy {
            Strategy::TicketrushRedis => StoreKind::Redis,
            _ => StoreKind::Pg,
        };
        let mut config = Config::new(1, w.units, store);
        config.database_url.clone_from(&w.database_url);
        config.redis_url.clone_from(&w.redis_url);
        config.keep = false;
        let backend = Backend::connect(&config).await?;
        match Self::on_sale(backend.stores(), &config).await {
            Ok((rush, session, grade)) => Ok(Self {
                backend,
                rush,
                session,
                grade,
            }),
            Err(e) => {
                let _ = backend.cleanup().await;
                Err(e)
            }
        }
    }

    async fn on_sale(
        stores: ticket_core::Stores,
        config: &Config,
    ) -> Result<(TicketRush, SessionId, Grade), LocksError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let event = crate::driver::session_of(config, clock.now())?;
        let rush = TicketRush::new(stores, clock, TimeLimits::default())
            .map_err(library("building the services"))?;
        let session = event
            .sessions
            .first()
            .ok_or_else(|| LocksError::Config("no session".into()))?
            .id;
        let grade = Grade::new("GA").map_err(|e| LocksError::Config(e.to_string()))?;
        rush.create_event(&event)
            .await
            .map_err(library("creating the event"))?;
        let mut policy = rush
            .stores()
            .policies
            .policy(session)
            .await
            .map_err(library("reading the default policy"))?;
        policy.queue.require_admission = false;
        policy.max_units_per_user = Some(4);
        rush.set_policy(session, &policy)
            .await
            .map_err(library("setting the sales policy"))?;
        Ok((rush, session, grade))
    }

    /// Removes the run's schema or keys.
    pub(crate) async fn remove(&self) -> Result<(), LocksError> {
        Ok(self.backend.cleanup().await?)
    }
}

impl Contender for Ticketrush {
    async fn buy(&self, buyer: u64) -> Result<Attempt, LocksError> {
        let user = UserId::new(format!("locks-{buyer}")).map_err(|e| LocksError::Library {
            context: "naming the buyer",
            source: e.into(),
        })?;
        let cmd = HoldCommand {
            session: self.session,
            user,
            tier: None,
            selection: Selection::Units {
                grade: self.grade.clone(),
                quantity: 1,
            },
        };
        match self.rush.holds.hold(cmd, None).await {
            Ok(_) => Ok(Attempt::Bought { retries: 0 }),
            Err(Error::Refused(Refusal::SoldOut { .. })) => Ok(Attempt::SoldOut { retries: 0 }),
            Err(source) => Err(LocksError::Library {
                context: "holding a unit",
                source,
            }),
        }
    }

    fn location(&self) -> Location {
        match &self.backend {
            Backend::Pg(s) => Location {
                pg_schema: Some(s.config().schema.clone()),
                redis_prefix: None,
            },
            Backend::Redis(s) => Location {
                pg_schema: None,
                redis_prefix: Some(s.config().prefix.clone()),
            },
            Backend::Memory(_) => Location::default(),
        }
    }

    async fn books(&self) -> Result<Books, LocksError> {
        let stores = self.rush.stores();
        let counts = stores
            .inventory
            .counts(self.session)
            .await
            .map_err(library("reading the hold counts"))?;
        let snapshot = stores
            .inventory
            .snapshot(self.session)
            .await
            .map_err(library("reading the stock"))?;
        let totals = snapshot.totals();
        // Every hold is live (HELD) during a run: the hold TTL is minutes.
        Ok(Books {
            orders: counts.holds.held,
            stock_left: i64::try_from(totals.available).unwrap_or(i64::MAX),
        })
    }
}

/// Wraps a library error with what the harness was doing.
fn library(context: &'static str) -> impl FnOnce(Error) -> LocksError {
    move |source| LocksError::Library { context, source }
}
