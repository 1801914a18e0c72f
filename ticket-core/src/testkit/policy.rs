//! Sales policy: checked before any stock is touched, changeable at run time.

use std::time::Duration;

use super::fixture::{Fixture, grade, user};
use crate::error::{Error, InvalidInput, Refusal};
use crate::model::hold::Selection;
use crate::model::policy::{GradeRule, Presale};
use crate::service::HoldCommand;
use crate::store::Stores;

fn vip(f: &Fixture, i: usize, tier: Option<&str>) -> HoldCommand {
    HoldCommand {
        session: f.session,
        user: user(i),
        tier: tier.map(str::to_owned),
        selection: Selection::Units {
            grade: grade("VIP"),
            quantity: 1,
        },
    }
}

/// Sales window, presale by tier and grades by tier are enforced, each refusal typed, and no
/// refused request touches stock.
pub async fn sales_policy_is_checked_before_stock(stores: Stores) {
    let f = Fixture::graded(stores, Duration::from_secs(3_600)).await;
    f.set_policy(|p| {
        p.tiers = vec!["BASIC".into(), "SILVER".into(), "GOLD".into()];
        p.presales = vec![Presale {
            min_tier: "GOLD".into(),
            opens_at: super::T0,
        }];
        p.grade_rules = vec![GradeRule {
            grade: grade("VIP"),
            min_tier: "SILVER".into(),
        }];
    })
    .await;
    let before = f.totals().await;
    let hold = |cmd| f.rush.holds.hold(cmd, None);
    let err = hold(vip(&f, 1, Some("SILVER")))
        .await
        .expect_err("presale is GOLD only");
    assert!(
        matches!(err, Error::Refused(Refusal::SalesNotOpen { opens_at }) if opens_at == f.event.sessions[0].sales.open_at),
        "{err:?}"
    );
    let err = hold(vip(&f, 1, Some("PLATINUM")))
        .await
        .expect_err("unknown tier");
    assert!(
        matches!(err, Error::Refused(Refusal::UnknownTier { .. })),
        "{err:?}"
    );
    assert_eq!(f.totals().await, before, "a refused request moved stock");
    hold(vip(&f, 2, Some("GOLD")))
        .await
        .expect("GOLD buys in the presale");
    f.clock.advance(Duration::from_secs(3_600));
    let err = hold(vip(&f, 3, Some("BASIC")))
        .await
        .expect_err("VIP is SILVER+");
    assert!(
        matches!(err, Error::Refused(Refusal::GradeNotAllowed { .. })),
        "{err:?}"
    );
    let err = hold(vip(&f, 3, None)).await.expect_err("no tier, no VIP");
    assert!(
        matches!(err, Error::Refused(Refusal::GradeNotAllowed { .. })),
        "{err:?}"
    );
    hold(vip(&f, 4, Some("SILVER")))
        .await
        .expect("SILVER buys VIP after the open");
    let mut ga = f.units(&user(5), 1);
    ga.tier = None;
    hold(ga).await.expect("anyone buys GA after the open");
    f.clock.advance(super::fixture::SALES_WINDOW);
    let err = hold(vip(&f, 6, Some("GOLD"))).await.expect_err("closed");
    assert!(
        matches!(err, Error::Refused(Refusal::SalesClosed { .. })),
        "{err:?}"
    );
    let t = f.totals().await;
    assert_eq!((t.held, t.available), (3, 17));
}

/// A policy stored at run time applies to the next request; an invalid one is refused and
/// the old one stays.
pub async fn policy_changes_apply_at_run_time(stores: Stores) {
    let f = Fixture::general(stores, 50, Duration::ZERO).await;
    let u = user(1);
    f.hold(&u, 3).await;
    f.set_policy(|p| p.max_units_per_user = Some(4)).await;
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 2), None)
        .await
        .expect_err("limit now 4");
    assert!(
        matches!(
            err,
            Error::Refused(Refusal::LimitExceeded {
                limit: 4,
                current: 3,
                requested: 2
            })
        ),
        "{err:?}"
    );
    f.hold(&u, 1).await;
    let mut bad = f
        .rush
        .stores()
        .policies
        .policy(f.session)
        .await
        .expect("policy");
    bad.grade_rules = vec![GradeRule {
        grade: grade("GA"),
        min_tier: "NOPE".into(),
    }];
    let err = f
        .rush
        .set_policy(f.session, &bad)
        .await
        .expect_err("invalid policy");
    assert!(
        matches!(err, Error::Invalid(InvalidInput::Policy(_))),
        "{err:?}"
    );
    assert_eq!(
        f.rush
            .stores()
            .policies
            .policy(f.session)
            .await
            .expect("policy")
            .max_units_per_user,
        Some(4)
    );
    f.set_policy(|p| p.max_units_per_user = None).await;
    f.hold(&u, 10).await;
    let json = serde_json::to_string(
        &f.rush
            .stores()
            .policies
            .policy(f.session)
            .await
            .expect("policy"),
    )
    .expect("serialise");
    let back: crate::model::policy::SalesPolicy =
        serde_json::from_str(&json).expect("policies are data");
    assert_eq!(back.max_units_per_user, None);
}

/// Presale buyers go through the queue like everyone else unless the policy says
/// `presale_skips_queue`: the queue opens with the presale, a public buyer cannot join
/// before public sales, and a presale hold needs an admission.
pub async fn presale_buyers_queue_unless_the_policy_skips_it(stores: Stores) {
    let f = Fixture::graded(stores, Duration::from_secs(3_600)).await;
    f.set_policy(|p| {
        p.tiers = vec!["SILVER".into(), "GOLD".into()];
        p.presales = vec![Presale {
            min_tier: "GOLD".into(),
            opens_at: super::T0,
        }];
        p.queue.require_admission = true;
    })
    .await;
    let before = f.totals().await;
    let err = f
        .rush
        .holds
        .hold(vip(&f, 1, Some("GOLD")), None)
        .await
        .expect_err("a presale hold needs an admission");
    assert!(
        matches!(err, Error::Refused(Refusal::NotAdmitted)),
        "{err:?}"
    );
    assert_eq!(f.totals().await, before, "a refused request moved stock");
    let public_open = f.event.sessions[0].sales.open_at;
    let err = f
        .rush
        .admission
        .join_with_tier(f.session, &user(2), Some("SILVER"))
        .await
        .expect_err("a public buyer waits for public sales");
    assert!(
        matches!(err, Error::Refused(Refusal::QueueNotOpen { opens_at }) if opens_at == public_open),
        "{err:?}"
    );
    f.rush
        .admission
        .join_with_tier(f.session, &user(1), Some("GOLD"))
        .await
        .expect("GOLD joins in the presale");
    assert_eq!(
        f.admit().await.admitted.len(),
        1,
        "the queue admits in the presale"
    );
    f.rush
        .holds
        .hold(vip(&f, 1, Some("GOLD")), None)
        .await
        .expect("an admitted GOLD buyer holds");

    f.set_policy(|p| p.queue.presale_skips_queue = true).await;
    f.rush
        .holds
        .hold(vip(&f, 3, Some("GOLD")), None)
        .await
        .expect("the policy lets presale buyers skip the queue");
    let err = f
        .rush
        .admission
        .join_with_tier(f.session, &user(4), Some("GOLD"))
        .await
        .expect_err("the queue opens with public sales now");
    assert!(
        matches!(err, Error::Refused(Refusal::QueueNotOpen { .. })),
        "{err:?}"
    );
}
