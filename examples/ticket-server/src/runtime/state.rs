//! What every request handler shares, built from the configuration: the library's services on
//! the chosen backend, the app's own stores on the same backend, the payment provider and the
//! token keys.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use payment_sandbox::client::HttpGateway;
use payment_sandbox::signature::Verifier;
use payment_sandbox::{Sandbox, SandboxConfig};
use ticket_core::gateway::PaymentGateway;
use ticket_core::memory::MemoryStore;
use ticket_core::service::CheckoutService;
use ticket_core::{Clock, Stores, SystemClock, TicketRush};
use ticket_store_pg::{PgConfig, PgStore};
use ticket_store_redis::{RedisConfig, RedisStore};

use crate::runtime::config::{Config, StoreKind};
use crate::services::auth::TokenKeys;
use crate::services::tickets::TicketSigner;
use crate::services::topups::TopUps;
use crate::services::wallet_gateway::{PaymentMethods, WalletGateway};
use crate::stores::accounts::{
    AccountStore, MemoryAccounts, PgAccounts, PgAccountsConfig, RedisAccounts, RedisAccountsConfig,
};
use crate::stores::security_audit::{
    AuditError, MemoryAudit, PgAudit, RedisAudit, SecurityAudit, SecurityAuditStore,
};
use crate::stores::throttle::{
    MemoryThrottle, PgThrottle, PgThrottleConfig, RedisThrottle, RedisThrottleConfig,
    ThrottleError, ThrottleStore,
};
use crate::stores::wallet::{
    MemoryWallet, PgWallet, PgWalletConfig, RedisWallet, RedisWalletConfig, TopUpStore, WalletStore,
};

/// Where this server serves the in-process sandbox's hosted payment page (the buyer's
/// browser must reach it): `<public URL>/sandbox/pay/{id}`.
pub const SANDBOX_PAGE_PREFIX: &str = "/sandbox";

/// A wallet backend: the ledger and the top-ups it credits, in one store.
trait WalletBackend: WalletStore + TopUpStore {}
impl<T: WalletStore + TopUpStore> WalletBackend for T {}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// A backend could not be reached or migrated.
    #[error("{what}: {message}")]
    Backend {
        /// Which store.
        what: &'static str,
        /// Why.
        message: String,
    },
}

fn backend(what: &'static str) -> impl Fn(String) -> StartError {
    move |message| StartError::Backend { what, message }
}

/// The shared state of the server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The library's services.
    pub rush: Arc<TicketRush>,
    /// Checkout over the payment provider.
    pub checkout: Arc<CheckoutService>,
    /// Users and refresh tokens.
    pub accounts: Arc<dyn AccountStore>,
    /// Buyers' wallets.
    pub wallet: Arc<dyn WalletStore>,
    /// Wallet top-ups paid by card (credited only once paid).
    pub topups: TopUps,
    /// Access-token keys.
    pub keys: Arc<TokenKeys>,
    /// Signs and checks ticket codes (from the JWT secret, so every process agrees).
    pub ticket_codes: TicketSigner,
    /// The clock every handler reads.
    pub clock: Arc<dyn Clock>,
    /// The settings in force.
    pub config: Arc<Config>,
    /// The in-process sandbox, when no shared one is configured (its hosted payment page is
    /// served under [`SANDBOX_PAGE_PREFIX`]).
    pub sandbox: Option<Sandbox>,
    /// Checks webhook signatures; set once the webhook endpoint is registered.
    pub webhook_verifier: Arc<OnceLock<Verifier>>,
    /// This process's counters and latency histograms (`GET /metrics`).
    pub metrics: Arc<crate::http::middleware::metrics::Metrics>,
    /// This process's per-user and per-IP request buckets.
    pub rate_limits: Arc<crate::http::middleware::rate_limit::RateLimits>,
    /// This process's coalesced admission rounds.
    pub admission_rounds: Arc<crate::services::admission_rounds::AdmissionRounds>,
    /// Sign-in rate-limit state (shared by every process on Redis or PostgreSQL).
    pub throttle: Arc<dyn crate::stores::throttle::ThrottleStore>,
    /// This process's bound on concurrent password hashing.
    pub hashing: Arc<crate::services::hashing::HashingPool>,
    /// Refusals for abuse (shared by every process on Redis or PostgreSQL).
    pub security_audit: Arc<crate::stores::security_audit::SecurityAudit>,
    /// This process's live view of the sales: one change-feed follower per session, shared
    /// by every event stream.
    pub live: Arc<crate::live::Live>,
    /// This process's name in leases and delivery claims (unique per process).
    pub process_id: String,
    /// Users' in-app notifications (shared by every process on Redis or PostgreSQL).
    pub inbox: Arc<dyn crate::stores::inbox::InboxStore>,
    /// The social login providers configured (none by default).
    pub oauth: Arc<crate::services::oauth::OAuth>,
    /// This process's refund runs of cancelled shows.
    pub refund_runs: Arc<crate::services::refund_runs::RefundRuns>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.config.store)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Connects (and migrates) every store of `config.store`, under `config.namespace`.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        let ns = config.namespace.clone();
        let (stores, accounts, wallet): (Stores, Arc<dyn AccountStore>, Arc<dyn WalletBackend>) =
            match config.store {
                StoreKind::Memory => (
                    MemoryStore::new().stores(),
                    Arc::new(MemoryAccounts::new()),
                    Arc::new(MemoryWallet::new()),
                ),
                StoreKind::Redis => {
                    let url = &config.redis_url;
                    let lib = RedisStore::connect(RedisConfig::new(url).with_prefix(ns.clone()))
                        .await
                        .map_err(|e| backend("redis")(e.to_string()))?;
                    let app = format!("{ns}:app");
                    let accounts = RedisAccounts::connect(
                        RedisAccountsConfig::new(url).with_prefix(app.clone()),
                    )
                    .await
                    .map_err(|e| backend("redis accounts")(e.to_string()))?;
                    let wallet = RedisWallet::connect(RedisWalletConfig::new(url).with_prefix(app))
                        .await
                        .map_err(|e| backend("redis wallet")(e.to_string()))?;
                    (lib.stores(), Arc::new(accounts), Arc::new(wallet))
                }
                StoreKind::Pg => {
                    let url = &config.database_url;
                    let lib = PgStore::connect(PgConfig::new(url).with_schema(&ns))
                        .await
                        .map_err(|e| backend("postgres")(e.to_string()))?;
                    lib.migrate()
                        .await
                        .map_err(|e| backend("postgres")(e.to_string()))?;
                    // The app's tables live in a schema of their own (their migrations must
                    // not meet the library's).
                    let app = format!("{ns}_app");
                    let accounts =
                        PgAccounts::connect(PgAccountsConfig::new(url).with_schema(app.clone()))
                            .await
                            .map_err(|e| backend("postgres accounts")(e.to_string()))?;
                    accounts
                        .migrate()
                        .await
                        .map_err(|e| backend("postgres accounts")(e.to_string()))?;
                    let wallet = PgWallet::connect(PgWalletConfig::new(url).with_schema(app))
                        .await
                        .map_err(|e| backend("postgres wallet")(e.to_string()))?;
                    wallet
                        .migrate()
                        .await
                        .map_err(|e| backend("postgres wallet")(e.to_string()))?;
                    (lib.stores(), Arc::new(accounts), Arc::new(wallet))
                }
            };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rush = TicketRush::new(stores, clock.clone(), config.time_limits())
            .map_err(|e| StartError::Config(e.to_string()))?;
        let (gateway, sandbox): (Arc<dyn PaymentGateway>, Option<Sandbox>) =
            match &config.payment_sandbox_url {
                Some(url) => {
                    let key = config.payment_sandbox_key.as_deref().ok_or_else(|| {
                        StartError::Config(
                            "--payment-sandbox-url needs --payment-sandbox-key".into(),
                        )
                    })?;
                    let key = payment_sandbox::auth::ApiKey::new(key)
                        .map_err(|e| StartError::Config(format!("--payment-sandbox-key: {e}")))?;
                    (
                        Arc::new(HttpGateway::new(url, key, Duration::from_secs(10)).map_err(
                            |e| StartError::Config(format!("--payment-sandbox-url: {e}")),
                        )?),
                        None,
                    )
                }
                None => {
                    let sandbox_config = SandboxConfig {
                        slow_delay: Duration::from_millis(config.sandbox_slow_delay_ms),
                        // Its hosted payment page is served by this server, under
                        // SANDBOX_PAGE_PREFIX (see `crate::http::router`).
                        public_url: format!("{}{SANDBOX_PAGE_PREFIX}", config.public_url()),
                        ..SandboxConfig::default()
                    };
                    let sandbox = Sandbox::with_clock(sandbox_config, clock.clone())
                        .map_err(|e| StartError::Config(format!("sandbox: {e}")))?;
                    (Arc::new(sandbox.clone()), Some(sandbox))
                }
            };
        let topups = TopUps::new(
            wallet.clone(),
            gateway.clone(),
            clock.clone(),
            ticket_core::model::money::Currency::new(crate::http::routes::wallet::WALLET_CURRENCY)
                .map_err(|e| StartError::Config(e.to_string()))?,
            Duration::from_millis(config.topup_timeout_ms),
        );
        let wallet: Arc<dyn WalletStore> = wallet;
        // Cards go to the provider; `wallet` payments are debited from the buyer's wallet.
        let methods = PaymentMethods::new(
            gateway,
            WalletGateway::new(
                wallet.clone(),
                rush.stores().reservations.clone(),
                clock.clone(),
            ),
        );
        let checkout = rush.checkout(Arc::new(methods));
        let keys = match &config.jwt_secret {
            Some(s) => TokenKeys::from_secret(s.as_bytes()),
            None => {
                tracing::warn!("no --jwt-secret: tokens are signed with a random per-process key");
                let mut secret = [0u8; 32];
                rand_core::TryRngCore::try_fill_bytes(&mut rand_core::OsRng, &mut secret)
                    .map_err(|e| StartError::Config(format!("randomness: {e}")))?;
                TokenKeys::from_secret(&secret)
            }
        }
        .map_err(|e| StartError::Config(e.to_string()))?;
        let ticket_codes = match &config.jwt_secret {
            Some(s) => TicketSigner::from_secret(s.as_bytes()),
            None => TicketSigner::random()
                .map_err(|e| StartError::Config(format!("randomness: {e}")))?,
        };
        let rate_limits =
            Arc::new(crate::http::middleware::rate_limit::RateLimits::from_config(&config));
        let throttle = connect_throttle(&config).await?;
        let hashing = Arc::new(crate::services::hashing::HashingPool::new(
            config.throttle.hash_permits(),
            Duration::from_millis(config.throttle.hash_wait_ms),
        ));
        let security_audit = connect_security_audit(&config).await?;
        let live = crate::live::Live::new(
            rush.stores().clone(),
            clock.clone(),
            crate::live::LiveConfig {
                stock_cache: !config.no_stock_cache,
                ..crate::live::LiveConfig::default()
            },
        );
        let process_id = format!("ticket-server-{}", uuid::Uuid::now_v7());
        let inbox = connect_inbox(&config).await?;
        let oauth = crate::services::oauth::OAuth::from_config(&config.oauth, config.listen)
            .map_err(StartError::Config)?;
        Ok(Self {
            rush: Arc::new(rush),
            checkout: Arc::new(checkout),
            accounts,
            wallet,
            topups,
            keys: Arc::new(keys),
            ticket_codes,
            clock,
            config: Arc::new(config),
            sandbox,
            webhook_verifier: Arc::new(OnceLock::new()),
            metrics: Arc::new(crate::http::middleware::metrics::Metrics::new()),
            rate_limits,
            admission_rounds: Arc::new(crate::services::admission_rounds::AdmissionRounds::new()),
            throttle,
            hashing,
            security_audit,
            live,
            process_id,
            inbox,
            oauth: Arc::new(oauth),
            refund_runs: Arc::default(),
        })
    }
}

/// The throttle state of `config.store`: memory, Redis under `<namespace>:app`, or
/// PostgreSQL in the schema `<namespace>_app` (migrated).
async fn connect_throttle(config: &Config) -> Result<Arc<dyn ThrottleStore>, StartError> {
    let ns = &config.namespace;
    let err = |e: ThrottleError| StartError::Backend {
        what: "throttle",
        message: e.to_string(),
    };
    Ok(match config.store {
        StoreKind::Memory => Arc::new(MemoryThrottle::new()),
        StoreKind::Redis => Arc::new(
            RedisThrottle::connect(
                RedisThrottleConfig::new(&config.redis_url).with_prefix(format!("{ns}:app")),
            )
            .await
            .map_err(err)?,
        ),
        StoreKind::Pg => {
            let store = PgThrottle::connect(
                PgThrottleConfig::new(&config.database_url).with_schema(format!("{ns}_app")),
            )
            .await
            .map_err(err)?;
            store.migrate().await.map_err(err)?;
            Arc::new(store)
        }
    })
}

/// The inbox of `config.store`: memory, Redis under `<namespace>:app`, or PostgreSQL in
/// the schema `<namespace>_app` (migrated).
async fn connect_inbox(
    config: &Config,
) -> Result<Arc<dyn crate::stores::inbox::InboxStore>, StartError> {
    use crate::stores::inbox::{InboxError, MemoryInbox, PgInbox, RedisInbox};
    let ns = &config.namespace;
    let err = |e: InboxError| StartError::Backend {
        what: "inbox",
        message: e.to_string(),
    };
    Ok(match config.store {
        StoreKind::Memory => Arc::new(MemoryInbox::new()),
        StoreKind::Redis => Arc::new(
            RedisInbox::connect(&config.redis_url, &format!("{ns}:app"))
                .await
                .map_err(err)?,
        ),
        StoreKind::Pg => {
            let store = PgInbox::connect(&config.database_url, &format!("{ns}_app"))
                .await
                .map_err(err)?;
            store.migrate().await.map_err(err)?;
            Arc::new(store)
        }
    })
}

/// The audit of `config.store`: memory, Redis under `<namespace>:app`, or PostgreSQL in the
/// schema `<namespace>_app` (migrated).
async fn connect_security_audit(config: &Config) -> Result<Arc<SecurityAudit>, StartError> {
    let ns = &config.namespace;
    let settings = &config.security_audit;
    let retain = settings.security_audit_retain;
    let err = |e: AuditError| StartError::Backend {
        what: "security audit",
        message: e.to_string(),
    };
    let store: Arc<dyn SecurityAuditStore> = match config.store {
        StoreKind::Memory => Arc::new(MemoryAudit::new(retain)),
        StoreKind::Redis => Arc::new(
            RedisAudit::connect(&config.redis_url, &format!("{ns}:app"), retain)
                .await
                .map_err(err)?,
        ),
        StoreKind::Pg => {
            let store = PgAudit::connect(&config.database_url, &format!("{ns}_app"), retain)
                .await
                .map_err(err)?;
            store.migrate().await.map_err(err)?;
            Arc::new(store)
        }
    };
    Ok(Arc::new(SecurityAudit::new(
        store,
        i64::try_from(settings.security_audit_window_secs.saturating_mul(1_000))
            .unwrap_or(i64::MAX),
    )))
}
