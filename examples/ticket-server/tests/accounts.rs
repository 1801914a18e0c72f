//! Accounts and refresh tokens on every backend: each behaviour is one generic test body,
//! run on memory, on Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`) and on PostgreSQL
//! (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Each Redis or PostgreSQL test works under its own key prefix or schema, removed when the
//! test ends (passed or failed), and fails loudly, never skips, when the service cannot be
//! reached. Every fixture also has a second handle with its own connection, as a second
//! server process would have; races are spread over both.

use std::sync::Arc;
use std::time::Duration;

use ticket_core::Timestamp;
use ticket_server::stores::accounts::{
    AccountChange, AccountError, AccountStore, FamilyId, MemoryAccounts, PgAccounts,
    PgAccountsConfig, RedisAccounts, RedisAccountsConfig, Role, TokenHash, TokenState, UserId,
};
use ticketrush_test_support::Namespace;

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const MINUTE: Duration = Duration::from_secs(60);
const RACERS: usize = 20;
/// The absolute end of the test logins' families: far beyond every test's clock.
const FAR: Timestamp = Timestamp::from_millis(1_700_000_000_000 + 30 * 86_400_000);

// ---------------------------------------------------------------------------------------
// fixtures

/// One backend under test: a store, a second handle on the same data (its own connection),
/// and the namespace whose keys or schema go when the test ends (passed or failed).
struct Backend {
    kind: Kind,
    store: Arc<dyn AccountStore>,
    other: Arc<dyn AccountStore>,
    _cleanup: Option<Namespace>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    Redis,
    Pg,
}

impl Backend {
    /// The store for the `i`-th racer: even ones on `store`, odd ones on `other`.
    fn handle(&self, i: usize) -> Arc<dyn AccountStore> {
        if i.is_multiple_of(2) {
            self.store.clone()
        } else {
            self.other.clone()
        }
    }
}

async fn memory() -> Backend {
    let store = MemoryAccounts::new();
    Backend {
        kind: Kind::Memory,
        other: Arc::new(store.clone()),
        store: Arc::new(store),
        _cleanup: None,
    }
}

async fn redis() -> Backend {
    let ns = Namespace::redis("accounts");
    let config = RedisAccountsConfig::new(ns.url()).with_prefix(ns.name());
    let store = ns.connected(RedisAccounts::connect(config.clone()).await);
    let other = RedisAccounts::connect(config.clone())
        .await
        .expect("second Redis connection");
    Backend {
        kind: Kind::Redis,
        store: Arc::new(store),
        other: Arc::new(other),
        _cleanup: Some(ns),
    }
}

async fn pg() -> Backend {
    let ns = Namespace::postgres("accounts");
    let mut config = PgAccountsConfig::new(ns.url()).with_schema(ns.name());
    config.application_name = ns.name().to_owned();
    let store = ns.connected(PgAccounts::connect(config.clone()).await);
    // `ns` cleans up from here on, even if migrating fails
    let other = PgAccounts::connect(config)
        .await
        .expect("second PostgreSQL pool");
    // two servers starting at once both migrate the fresh schema; a third run is a no-op
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    a.expect("migrate (first server)");
    b.expect("migrate (second server)");
    store.migrate().await.expect("migrate again");
    Backend {
        kind: Kind::Pg,
        store: Arc::new(store),
        other: Arc::new(other),
        _cleanup: Some(ns),
    }
}

/// Runs each named test body on every backend: `memory::name`, `redis::name`, `pg::name`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::memory().await).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::redis().await).await;
                }
            )*
        }
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::pg().await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    emails_are_normalised_and_unique,
    racing_signups_with_one_email_make_one_account,
    ensure_admin_creates_rehashes_and_never_promotes,
    token_versions_follow_logout_role_changes_and_blocks,
    role_changes_are_audited_and_never_remove_the_last_admin,
    racing_demotions_always_leave_an_admin,
    tiers_and_blocks_are_checked_and_audited,
    rotation_never_extends_a_login_past_its_absolute_end,
    racing_ensure_admin_makes_one_admin,
    rotation_happy_path,
    reuse_revokes_the_whole_family,
    expired_and_unknown_tokens_are_refused,
    racing_rotations_of_one_token_let_exactly_one_win,
    revoke_user_tokens_logs_out_everywhere,
    issue_refresh_refuses_bad_input,
    purge_forgets_expired_tokens,
);

// ---------------------------------------------------------------------------------------
// helpers

fn hash(name: &str) -> TokenHash {
    TokenHash::of(&format!("refresh-token-{name}"))
}

async fn signup(b: &Backend, email: &str) -> UserId {
    b.store
        .create_user(
            email,
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            Role::User,
            T0,
        )
        .await
        .expect("signup")
        .id
}

/// Signs `user` up for a new family with token `name`, valid for a minute from T0.
async fn login(b: &Backend, user: UserId, name: &str) -> FamilyId {
    let family = FamilyId::new_at(T0);
    b.store
        .issue_refresh(user, &hash(name), family, T0.plus(MINUTE), FAR, T0)
        .await
        .expect("issue refresh token");
    family
}

async fn rotate(
    store: &dyn AccountStore,
    old: &str,
    new: &str,
    at: Timestamp,
) -> Result<(UserId, Role), AccountError> {
    store
        .rotate_refresh(&hash(old), &hash(new), at, at.plus(MINUTE))
        .await
        .map(|r| (r.user, r.role))
}

// ---------------------------------------------------------------------------------------
// test bodies

async fn emails_are_normalised_and_unique(b: Backend) {
    let user = b
        .store
        .create_user("  Ann@Example.ORG \n", "$argon2id$ann", Role::User, T0)
        .await
        .expect("signup");
    assert_eq!(user.email, "ann@example.org");
    assert_eq!(user.role, Role::User);
    assert_eq!(user.created_at, T0);
    assert_eq!(user.password_hash, "$argon2id$ann");

    // the other server sees it, by any spelling of the email and by id
    assert_eq!(
        b.other.user_by_email("ANN@example.org").await,
        Ok(user.clone())
    );
    assert_eq!(b.other.user(user.id).await, Ok(user.clone()));

    // a second signup with the same email (any spelling) is refused, and changes nothing
    for email in ["ann@example.org", " ANN@EXAMPLE.ORG"] {
        assert_eq!(
            b.other
                .create_user(email, "$argon2id$other", Role::Admin, T0.plus(MINUTE))
                .await,
            Err(AccountError::EmailTaken)
        );
    }
    assert_eq!(
        b.store.user_by_email("ann@example.org").await,
        Ok(user.clone())
    );

    // another email is another account
    let bob = b
        .store
        .create_user("bob@example.org", "$argon2id$bob", Role::Admin, T0)
        .await
        .expect("second account");
    assert_ne!(bob.id, user.id);
    assert_eq!(bob.role, Role::Admin);

    // bad input is refused or not found, never a panic
    for bad in [
        "",
        "   ",
        "ann",
        "a b@c.com",
        "x@y@z.com",
        "ana@example",
        "ana@example..com",
    ] {
        assert!(
            matches!(
                b.store
                    .create_user(bad, "$argon2id$x", Role::User, T0)
                    .await,
                Err(AccountError::Invalid(_))
            ),
            "{bad:?}"
        );
        assert_eq!(
            b.store.user_by_email(bad).await,
            Err(AccountError::NotFound),
            "{bad:?}"
        );
    }
    assert!(matches!(
        b.store.create_user("c@d", "", Role::User, T0).await,
        Err(AccountError::Invalid(_))
    ));
    assert_eq!(
        b.store.user_by_email("nobody@example.org").await,
        Err(AccountError::NotFound)
    );
    assert_eq!(
        b.store.user(UserId::new_at(T0)).await,
        Err(AccountError::NotFound)
    );
}

async fn racing_signups_with_one_email_make_one_account(b: Backend) {
    let spellings = ["race@example.org", " Race@Example.org", "RACE@EXAMPLE.ORG "];
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = b.handle(i);
            let email = spellings[i % spellings.len()];
            tokio::spawn(async move {
                store
                    .create_user(email, &format!("$argon2id${i}"), Role::User, T0)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(user) => winners.push(user),
            Err(e) => assert_eq!(e, AccountError::EmailTaken),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one signup wins: {winners:?}");
    assert_eq!(
        b.store.user_by_email("race@example.org").await,
        Ok(winners[0].clone())
    );
}

async fn ensure_admin_creates_rehashes_and_never_promotes(b: Backend) {
    // creates
    let admin = b
        .store
        .ensure_admin(" Admin@Example.org", "$argon2id$first", T0)
        .await
        .expect("ensure_admin creates");
    assert_eq!(admin.email, "admin@example.org");
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(admin.password_hash, "$argon2id$first");
    login(&b, admin.id, "admin-phone").await;

    // again with another password (another server, another start): the new one takes effect
    // and, as any password change, revokes the admin's tokens
    let again = b
        .other
        .ensure_admin("admin@example.org", "$argon2id$second", T0.plus(MINUTE))
        .await
        .expect("ensure_admin again");
    assert_eq!(
        (again.id, again.created_at, again.role),
        (admin.id, T0, Role::Admin)
    );
    assert_eq!(again.password_hash, "$argon2id$second");
    assert_eq!(again.token_version, admin.token_version + 1);
    assert_eq!(b.store.user(admin.id).await, Ok(again.clone()));
    assert_eq!(
        rotate(&*b.store, "admin-phone", "admin-phone-2", T0).await,
        Err(AccountError::TokenRevoked)
    );

    // an account that signed up with the email first is never promoted, and is untouched
    let carol = b
        .store
        .create_user("carol@example.org", "$argon2id$carol", Role::User, T0)
        .await
        .expect("signup");
    assert_eq!(
        b.store
            .ensure_admin("CAROL@example.org", "$argon2id$new", T0.plus(MINUTE))
            .await,
        Err(AccountError::NotAnAdmin {
            email: "carol@example.org".into()
        })
    );
    assert_eq!(b.other.user(carol.id).await, Ok(carol));

    assert!(matches!(
        b.store
            .ensure_admin("not an email", "$argon2id$x", T0)
            .await,
        Err(AccountError::Invalid(_))
    ));
}

async fn racing_ensure_admin_makes_one_admin(b: Backend) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = b.handle(i);
            tokio::spawn(async move {
                store
                    .ensure_admin("root@example.org", &format!("$argon2id${i}"), T0)
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        let admin = task.await.expect("task").expect("every racer succeeds");
        assert_eq!(admin.role, Role::Admin);
        ids.push(admin.id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one account for all racers: {ids:?}");
    let stored = b
        .store
        .user_by_email("root@example.org")
        .await
        .expect("the admin");
    assert_eq!(stored.id, ids[0]);
    assert_eq!(stored.role, Role::Admin);
}

async fn rotation_happy_path(b: Backend) {
    let user = signup(&b, "dan@example.org").await;
    let family = login(&b, user, "t1").await;
    let t1 = b
        .store
        .refresh_token(&hash("t1"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        (t1.family, t1.user, t1.expires_at, t1.used, t1.revoked),
        (family, user, T0.plus(MINUTE), false, false)
    );

    let at = T0.plus(Duration::from_secs(10));
    assert_eq!(
        rotate(&*b.store, "t1", "t2", at).await,
        Ok((user, Role::User))
    );
    let old = b.store.refresh_token(&hash("t1")).await.expect("read");
    assert_eq!(old.map(|t| t.used), Some(true));
    let new = b
        .other
        .refresh_token(&hash("t2"))
        .await
        .expect("read")
        .expect("successor stored");
    assert_eq!(
        (new.family, new.user, new.expires_at, new.used, new.revoked),
        (family, user, at.plus(MINUTE), false, false)
    );

    // the successor rotates on the other server; the role answered is the current one
    assert_eq!(
        rotate(&*b.other, "t2", "t3", at).await,
        Ok((user, Role::User))
    );
    let admin = b
        .store
        .create_user("root@example.org", "$argon2id$root", Role::Admin, T0)
        .await
        .expect("an admin")
        .id;
    b.store
        .set_role(admin, user, Role::Admin, at)
        .await
        .expect("promote");
    assert_eq!(
        rotate(&*b.store, "t3", "t4", at).await,
        Ok((user, Role::Admin))
    );
}

async fn reuse_revokes_the_whole_family(b: Backend) {
    let user = signup(&b, "eve@example.org").await;
    let family = login(&b, user, "t1").await;
    let other_family = login(&b, user, "phone").await;
    assert_eq!(
        rotate(&*b.store, "t1", "t2", T0).await,
        Ok((user, Role::User))
    );

    // t1 presented again (copied by an attacker, say): refused, the family is revoked
    assert_eq!(
        rotate(&*b.other, "t1", "t2-attacker", T0).await,
        Err(AccountError::TokenReused)
    );
    assert_eq!(
        b.store.refresh_token(&hash("t2-attacker")).await,
        Ok(None),
        "nothing issued to the reuser"
    );
    // the legitimate successor stops working too
    assert_eq!(
        rotate(&*b.store, "t2", "t3", T0).await,
        Err(AccountError::TokenRevoked)
    );
    let t2 = b
        .store
        .refresh_token(&hash("t2"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!((t2.family, t2.used, t2.revoked), (family, false, true));
    // a used token keeps answering TokenReused
    assert_eq!(
        rotate(&*b.store, "t1", "t5", T0).await,
        Err(AccountError::TokenReused)
    );

    // the user's other login is untouched
    assert_eq!(
        rotate(&*b.store, "phone", "phone2", T0).await,
        Ok((user, Role::User))
    );
    let phone2 = b.store.refresh_token(&hash("phone2")).await.expect("read");
    assert_eq!(
        phone2.map(|t| (t.family, t.revoked)),
        Some((other_family, false))
    );
}

async fn expired_and_unknown_tokens_are_refused(b: Backend) {
    let user = signup(&b, "fay@example.org").await;
    login(&b, user, "t1").await; // valid while now < T0 + 1 min
    login(&b, user, "u1").await;

    let expiry = T0.plus(MINUTE);
    assert_eq!(
        rotate(&*b.store, "t1", "t2", expiry).await,
        Err(AccountError::TokenExpired)
    );
    assert_eq!(
        rotate(&*b.other, "t1", "t2", expiry.plus(MINUTE)).await,
        Err(AccountError::TokenExpired)
    );
    // nothing changed: not used, no successor
    let t1 = b.store.refresh_token(&hash("t1")).await.expect("read");
    assert_eq!(t1.map(|t| (t.used, t.revoked)), Some((false, false)));
    assert_eq!(b.store.refresh_token(&hash("t2")).await, Ok(None));

    // one millisecond before the expiry it still works
    let just_before = Timestamp::from_millis(expiry.as_millis() - 1);
    assert_eq!(
        rotate(&*b.store, "u1", "u2", just_before).await,
        Ok((user, Role::User))
    );

    assert_eq!(
        rotate(&*b.store, "never-issued", "x", T0).await,
        Err(AccountError::TokenUnknown)
    );
    assert_eq!(b.store.refresh_token(&hash("never-issued")).await, Ok(None));
}

async fn racing_rotations_of_one_token_let_exactly_one_win(b: Backend) {
    let user = signup(&b, "gus@example.org").await;
    login(&b, user, "t1").await;
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = b.handle(i);
            tokio::spawn(async move { rotate(&*store, "t1", &format!("next-{i}"), T0).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.expect("task") {
            Ok(answer) => {
                assert_eq!(answer, (user, Role::User));
                winners.push(i);
            }
            // every loser presented a token that was used by then: reuse
            Err(e) => assert_eq!(e, AccountError::TokenReused, "racer {i}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {winners:?}");
    // only the winner's successor exists, and the losers' reuse revoked its family
    for i in 0..RACERS {
        let stored = b
            .store
            .refresh_token(&hash(&format!("next-{i}")))
            .await
            .expect("read");
        assert_eq!(stored.is_some(), i == winners[0], "successor of racer {i}");
    }
    assert_eq!(
        rotate(&*b.store, &format!("next-{}", winners[0]), "after", T0).await,
        Err(AccountError::TokenRevoked)
    );
}

async fn revoke_user_tokens_logs_out_everywhere(b: Backend) {
    let hal = signup(&b, "hal@example.org").await;
    let ivy = signup(&b, "ivy@example.org").await;
    login(&b, hal, "hal-laptop").await;
    login(&b, hal, "hal-phone").await;
    assert_eq!(
        rotate(&*b.store, "hal-phone", "hal-phone2", T0).await,
        Ok((hal, Role::User))
    );
    let ivy_family = login(&b, ivy, "ivy-1").await;

    b.other
        .revoke_user_tokens(hal)
        .await
        .expect("logout everywhere");
    b.store.revoke_user_tokens(hal).await.expect("idempotent");
    b.store
        .revoke_user_tokens(UserId::new_at(T0))
        .await
        .expect("unknown user is no error");
    for token in ["hal-laptop", "hal-phone2"] {
        assert_eq!(
            rotate(&*b.store, token, &format!("{token}-next"), T0).await,
            Err(AccountError::TokenRevoked),
            "{token}"
        );
    }
    // a used token of a revoked family is still reuse
    assert_eq!(
        rotate(&*b.store, "hal-phone", "x", T0).await,
        Err(AccountError::TokenReused)
    );
    // other users are untouched; a new login works
    assert_eq!(
        rotate(&*b.store, "ivy-1", "ivy-2", T0).await,
        Ok((ivy, Role::User))
    );
    login(&b, hal, "hal-again").await;
    assert_eq!(
        rotate(&*b.other, "hal-again", "hal-again2", T0).await,
        Ok((hal, Role::User))
    );

    // revoke_family: one login out
    b.other.revoke_family(ivy_family).await.expect("logout");
    b.other.revoke_family(ivy_family).await.expect("idempotent");
    b.other
        .revoke_family(FamilyId::new_at(T0))
        .await
        .expect("unknown family is no error");
    assert_eq!(
        rotate(&*b.store, "ivy-2", "ivy-3", T0).await,
        Err(AccountError::TokenRevoked)
    );
}

async fn issue_refresh_refuses_bad_input(b: Backend) {
    let jo = signup(&b, "jo@example.org").await;
    let kim = signup(&b, "kim@example.org").await;
    let family = login(&b, jo, "jo-1").await;
    let exp = T0.plus(MINUTE);

    assert_eq!(
        b.store
            .issue_refresh(
                UserId::new_at(T0),
                &hash("ghost"),
                FamilyId::new_at(T0),
                exp,
                FAR,
                T0
            )
            .await,
        Err(AccountError::NotFound)
    );
    assert!(matches!(
        b.store
            .issue_refresh(jo, &hash("jo-1"), FamilyId::new_at(T0), exp, FAR, T0)
            .await,
        Err(AccountError::Invalid(_))
    ));
    assert!(matches!(
        b.store
            .issue_refresh(kim, &hash("kim-1"), family, exp, FAR, T0)
            .await,
        Err(AccountError::Invalid(_))
    ));
    assert_eq!(b.store.refresh_token(&hash("ghost")).await, Ok(None));
    assert_eq!(b.store.refresh_token(&hash("kim-1")).await, Ok(None));
    // a rotation onto a hash already stored is refused and leaves the old token usable
    login(&b, jo, "jo-other").await;
    assert!(matches!(
        rotate(&*b.store, "jo-1", "jo-other", T0).await,
        Err(AccountError::Invalid(_))
    ));
    assert_eq!(
        rotate(&*b.store, "jo-1", "jo-2", T0).await,
        Ok((jo, Role::User))
    );
    // a second token issued into an existing family of the same user is fine
    b.store
        .issue_refresh(jo, &hash("jo-extra"), family, exp, FAR, T0)
        .await
        .expect("same family, same user");
}

async fn purge_forgets_expired_tokens(b: Backend) {
    let lee = signup(&b, "lee@example.org").await;
    login(&b, lee, "short").await; // expires at T0 + 1 min
    let long = FamilyId::new_at(T0);
    b.store
        .issue_refresh(lee, &hash("long"), long, T0.plus(MINUTE * 60), FAR, T0)
        .await
        .expect("issue");

    assert_eq!(b.store.purge_expired(T0).await, Ok(0));
    let removed = b
        .other
        .purge_expired(T0.plus(MINUTE * 2))
        .await
        .expect("purge");
    let short = b.store.refresh_token(&hash("short")).await.expect("read");
    if b.kind == Kind::Redis {
        // Redis forgets by key TTL (expiry + retention), not by purge
        assert_eq!(removed, 0);
        assert!(short.is_some());
    } else {
        assert_eq!(removed, 1);
        assert_eq!(short, None);
        assert_eq!(
            rotate(&*b.store, "short", "x", T0).await,
            Err(AccountError::TokenUnknown)
        );
    }
    assert_eq!(
        rotate(&*b.store, "long", "long2", T0.plus(MINUTE * 2)).await,
        Ok((lee, Role::User))
    );
}

// ---------------------------------------------------------------------------------------
// roles, tiers, blocking, token versions, the account audit trail

async fn admin(b: &Backend, email: &str) -> UserId {
    b.store
        .create_user(email, "$argon2id$admin", Role::Admin, T0)
        .await
        .expect("admin")
        .id
}

async fn token_versions_follow_logout_role_changes_and_blocks(b: Backend) {
    let root = admin(&b, "root@example.org").await;
    let user = signup(&b, "tv@example.org").await;
    let state = |v, blocked| TokenState {
        tiers: Vec::new(),
        version: v,
        blocked,
    };
    assert_eq!(b.store.token_state(user).await, Ok(state(0, false)));
    assert_eq!(
        b.store.token_state(UserId::new_at(T0)).await,
        Ok(TokenState::default()),
        "an unknown user has the default state"
    );
    b.store.revoke_user_tokens(user).await.expect("logout");
    assert_eq!(b.other.token_state(user).await, Ok(state(1, false)));
    b.store
        .set_role(root, user, Role::Gate, T0)
        .await
        .expect("role");
    assert_eq!(b.other.token_state(user).await, Ok(state(2, false)));
    b.store
        .set_tiers(root, user, &["GOLD".into()], T0)
        .await
        .expect("tiers");
    // from here on the state carries the tiers, read in the same step as the version
    let state = |v, blocked| TokenState {
        tiers: vec!["GOLD".to_owned()],
        version: v,
        blocked,
    };
    assert_eq!(
        b.other.token_state(user).await,
        Ok(state(2, false)),
        "tiers do not revoke tokens"
    );
    login(&b, user, "tv-phone").await;
    b.store
        .set_blocked(root, user, true, T0)
        .await
        .expect("block");
    assert_eq!(b.other.token_state(user).await, Ok(state(3, true)));
    assert_eq!(
        rotate(&*b.store, "tv-phone", "tv-phone-2", T0).await,
        Err(AccountError::TokenRevoked),
        "blocking logs out everywhere"
    );
    b.store
        .set_blocked(root, user, false, T0)
        .await
        .expect("unblock");
    assert_eq!(b.other.token_state(user).await, Ok(state(3, false)));
    // revoking an unknown user creates nothing
    b.store
        .revoke_user_tokens(UserId::new_at(T0))
        .await
        .expect("no error");
}

async fn role_changes_are_audited_and_never_remove_the_last_admin(b: Backend) {
    let root = admin(&b, "root@example.org").await;
    let user = signup(&b, "role@example.org").await;
    assert_eq!(
        b.store.set_role(root, root, Role::User, T0).await,
        Err(AccountError::OwnAccount)
    );
    assert_eq!(
        b.store
            .set_role(root, UserId::new_at(T0), Role::Gate, T0)
            .await,
        Err(AccountError::NotFound)
    );
    let at = T0.plus(MINUTE);
    let record = b
        .store
        .set_role(root, user, Role::Gate, at)
        .await
        .expect("grant")
        .expect("a change");
    assert_eq!(
        (
            record.actor,
            record.target,
            record.change,
            record.from.as_str(),
            record.to.as_str(),
            record.at
        ),
        (root, user, AccountChange::Role, "USER", "GATE", at)
    );
    assert_eq!(
        b.other.set_role(root, user, Role::Gate, at).await,
        Ok(None),
        "the same role again changes nothing"
    );
    b.store
        .set_role(root, user, Role::Admin, at)
        .await
        .expect("promote");
    // two admins: one may demote the other; then the remaining one is the last
    b.other
        .set_role(user, root, Role::User, at)
        .await
        .expect("demote root");
    assert_eq!(
        b.store.set_role(root, user, Role::User, at).await,
        Err(AccountError::LastAdmin)
    );
    assert_eq!(b.store.user(user).await.map(|u| u.role), Ok(Role::Admin));

    let trail = b.store.account_audit(None, 10).await.expect("audit");
    let steps: Vec<_> = trail
        .iter()
        .map(|r| (r.seq, r.from.as_str(), r.to.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (1, "USER", "GATE"),
            (2, "GATE", "ADMIN"),
            (3, "ADMIN", "USER")
        ]
    );
    let page = b.other.account_audit(Some(1), 1).await.expect("page");
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    assert_eq!(b.other.account_audit(Some(3), 10).await, Ok(Vec::new()));
}

async fn racing_demotions_always_leave_an_admin(b: Backend) {
    // the only two admins demote each other at once, from two server processes, many times
    let (a, c) = (
        admin(&b, "a@example.org").await,
        admin(&b, "c@example.org").await,
    );
    for round in 0..RACERS {
        let (s1, s2) = (b.handle(0), b.handle(1));
        let one = tokio::spawn(async move { s1.set_role(a, c, Role::User, T0).await });
        let two = tokio::spawn(async move { s2.set_role(c, a, Role::User, T0).await });
        let outcomes = [one.await.expect("task"), two.await.expect("task")];
        let won = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
        assert_eq!(won, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.contains(&Err(AccountError::LastAdmin)),
            "round {round}: {outcomes:?}"
        );
        let roles = [
            b.store.user(a).await.expect("a").role,
            b.store.user(c).await.expect("c").role,
        ];
        let (admin_left, demoted) = match roles {
            [Role::Admin, Role::User] => (a, c),
            [Role::User, Role::Admin] => (c, a),
            other => panic!("round {round}: exactly one admin must be left: {other:?}"),
        };
        b.store
            .set_role(admin_left, demoted, Role::Admin, T0)
            .await
            .expect("promote back");
    }
}

async fn tiers_and_blocks_are_checked_and_audited(b: Backend) {
    let root = admin(&b, "root@example.org").await;
    let other_admin = admin(&b, "second@example.org").await;
    let user = signup(&b, "tiers@example.org").await;
    for bad in [
        vec!["gold".to_owned()],
        vec![String::new()],
        vec!["GOLD".into(), "GOLD".into()],
        vec!["A,B".into()],
    ] {
        assert!(
            matches!(
                b.store.set_tiers(root, user, &bad, T0).await,
                Err(AccountError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    let tiers = vec!["SILVER".to_owned(), "GOLD".to_owned()];
    let r = b
        .store
        .set_tiers(root, user, &tiers, T0)
        .await
        .expect("tiers")
        .expect("changed");
    assert_eq!(
        (r.change, r.from.as_str(), r.to.as_str()),
        (AccountChange::Tiers, "", "SILVER,GOLD")
    );
    assert_eq!(b.other.user(user).await.map(|u| u.tiers), Ok(tiers.clone()));
    assert_eq!(b.other.set_tiers(root, user, &tiers, T0).await, Ok(None));
    b.store.set_tiers(root, user, &[], T0).await.expect("clear");
    assert_eq!(b.other.user(user).await.map(|u| u.tiers), Ok(Vec::new()));

    assert_eq!(
        b.store.set_blocked(root, other_admin, true, T0).await,
        Err(AccountError::AdminNotBlockable)
    );
    assert_eq!(
        b.store.set_blocked(root, root, true, T0).await,
        Err(AccountError::OwnAccount)
    );
    let r = b
        .store
        .set_blocked(root, user, true, T0)
        .await
        .expect("block")
        .expect("changed");
    assert_eq!(
        (r.change, r.from.as_str(), r.to.as_str()),
        (AccountChange::Blocked, "false", "true")
    );
    assert_eq!(b.other.user(user).await.map(|u| u.blocked), Ok(true));
    assert_eq!(b.other.set_blocked(root, user, true, T0).await, Ok(None));
    let trail = b.store.account_audit(None, 100).await.expect("audit");
    assert_eq!(trail.len(), 3, "{trail:?}");
    assert!(trail.windows(2).all(|w| w[0].seq < w[1].seq));
}

async fn rotation_never_extends_a_login_past_its_absolute_end(b: Backend) {
    let user = signup(&b, "abs@example.org").await;
    let ends = T0.plus(Duration::from_secs(90));
    let family = FamilyId::new_at(T0);
    // a token asked to outlive its family is capped at the family's end
    b.store
        .issue_refresh(user, &hash("a1"), family, T0.plus(MINUTE * 10), ends, T0)
        .await
        .expect("issue");
    let a1 = b.store.refresh_token(&hash("a1")).await.expect("read");
    assert_eq!(a1.map(|t| t.expires_at), Some(ends));
    let at = T0.plus(Duration::from_secs(50));
    let rotated = b
        .other
        .rotate_refresh(&hash("a1"), &hash("a2"), at, at.plus(MINUTE))
        .await
        .expect("rotate");
    assert_eq!(rotated.expires_at, ends, "capped at the family's end");
    assert_eq!(rotated.token_version, 0);
    let late = ends.minus(Duration::from_millis(1));
    b.store
        .rotate_refresh(&hash("a2"), &hash("a3"), late, late.plus(MINUTE))
        .await
        .expect("rotates until the end");
    assert_eq!(
        b.store
            .rotate_refresh(&hash("a3"), &hash("a4"), ends, ends.plus(MINUTE))
            .await,
        Err(AccountError::TokenExpired)
    );
}
