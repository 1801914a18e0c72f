//! The simulated buyers: who they are (a seeded [`Crowd`]) and what one of them does when
//! it gets a turn ([`play`]).
//!
//! A user is a small state machine advanced by whichever worker picks up its [`Turn`]; no
//! task sleeps per user. A turn is one thing a person does in one go: join the queue; look
//! at their place in line (and, when admitted, hold, then pay, decline or walk away); or
//! cancel a purchase they made earlier. Every library call is timed into [`Samples`].

use std::sync::Arc;
use std::time::Instant;

use payment_sandbox::cards::numbers;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use ticket_core::HoldId;
use ticket_core::model::queue::{Outlook, TicketState};

use crate::config::Mix;
use crate::metrics::{Op, Samples};
use crate::progress::Progress;
use crate::seller::{Payment, Seller};

/// What an admitted user does once they hold units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Pays with the succeeding card.
    PaySuccess,
    /// Pays with the declined card.
    Decline,
    /// Never pays; the hold expires.
    Abandon,
    /// Pays, then cancels later with a full refund.
    CancelLater,
}

/// One simulated buyer's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// What they do once they hold.
    pub behaviour: Behaviour,
    /// How many units they want (they take fewer when fewer are left).
    pub quantity: u32,
}

/// Every buyer's profile, drawn from a seed: the same seed gives the same crowd.
#[derive(Debug, Clone)]
pub struct Crowd {
    profiles: Vec<(Behaviour, u8)>,
}

impl Crowd {
    /// `users` profiles: behaviours in the proportions of `mix` (each user draws one),
    /// quantities uniform in `1..=max_per_user` (at most 255).
    pub fn new(users: u32, mix: &Mix, max_per_user: u32, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let max = u64::from(max_per_user.clamp(1, 255));
        let profiles = (0..users)
            .map(|_| {
                // 53 random bits as a fraction in [0, 1).
                let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let behaviour = if x < mix.pay_success {
                    Behaviour::PaySuccess
                } else if x < mix.pay_success + mix.decline {
                    Behaviour::Decline
                } else if x < mix.pay_success + mix.decline + mix.abandon {
                    Behaviour::Abandon
                } else {
                    Behaviour::CancelLater
                };
                let quantity = u8::try_from(1 + rng.next_u64() % max).unwrap_or(1);
                (behaviour, quantity)
            })
            .collect();
        Self { profiles }
    }

    /// User `user`'s profile (a user outside the crowd pays for one unit).
    pub fn profile(&self, user: u32) -> Profile {
        let (behaviour, quantity) = usize::try_from(user)
            .ok()
            .and_then(|i| self.profiles.get(i))
            .copied()
            .unwrap_or((Behaviour::PaySuccess, 1));
        Profile {
            behaviour,
            quantity: u32::from(quantity),
        }
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether the crowd is empty.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// One thing one user does in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Join the queue.
    Join(u32),
    /// Look at the queue; when admitted, hold and then pay, decline or walk away.
    Visit(u32),
    /// Cancel an earlier purchase and get the money back.
    Cancel {
        /// The user.
        user: u32,
        /// The confirmed hold to cancel.
        hold: HoldId,
        /// Its units.
        units: u32,
    },
}

impl Turn {
    /// The user who plays it.
    pub fn user(self) -> u32 {
        match self {
            Turn::Join(u) | Turn::Visit(u) | Turn::Cancel { user: u, .. } => u,
        }
    }
}

/// How a turn ended for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnResult {
    /// In line with this sequence number.
    Joined {
        /// The ticket's place in line (`u64::MAX` if the seller gave none).
        seq: u64,
    },
    /// Still waiting, not admitted yet, and stock may still reach them.
    Waiting,
    /// Saw the outlook `SoldOut` and left the queue.
    SawSoldOut,
    /// Their admission had run out: joined again at the back.
    Rejoined,
    /// Paid; the units are theirs.
    Bought {
        /// Units bought.
        units: u32,
    },
    /// The card was declined; the units went back on sale.
    Declined {
        /// Units that were held.
        units: u32,
    },
    /// Walked away from a hold that will expire.
    Abandoned {
        /// Units left in the hold.
        units: u32,
    },
    /// Paid, and will cancel later.
    WillCancel {
        /// The confirmed hold.
        hold: HoldId,
        /// Its units.
        units: u32,
    },
    /// Cancelled and refunded.
    Cancelled {
        /// Units given back.
        units: u32,
    },
    /// Too late to pay (the hold expired first, possible with a short real-time TTL).
    TooLate,
    /// Admitted, but not even one unit was left for them: left the queue.
    GaveUp,
    /// A call failed unexpectedly; the user stops (counted as a failure in the report).
    Lost,
}

/// What every worker shares: the seller and the crowd.
#[derive(Debug)]
pub struct Shop {
    /// Who sells: the library in-process, or the example server over HTTP.
    pub seller: Seller,
    /// The buyers.
    pub crowd: Crowd,
    /// Live counters for the progress bar and the timeline.
    pub progress: Arc<Progress>,
    /// The run's time origin.
    pub start: Instant,
}

/// Plays one turn of one user.
pub async fn play(shop: &Shop, turn: Turn, s: &mut Samples) -> TurnResult {
    match turn {
        Turn::Join(u) => join(shop, u, s).await,
        Turn::Visit(u) => visit(shop, u, s).await,
        Turn::Cancel { user, hold, units } => cancel(shop, user, hold, units, s).await,
    }
}

async fn join(shop: &Shop, user: u32, s: &mut Samples) -> TurnResult {
    match s.time(Op::Join, shop.seller.join(user)).await {
        Ok(place) => {
            shop.progress.joined();
            TurnResult::Joined {
                seq: place.number.unwrap_or(u64::MAX),
            }
        }
        Err(_) => TurnResult::Lost,
    }
}

async fn visit(shop: &Shop, user: u32, s: &mut Samples) -> TurnResult {
    let Ok(place) = s.time(Op::View, shop.seller.view(user)).await else {
        return TurnResult::Lost;
    };
    match place.state {
        TicketState::Active => {
            shop.progress.admitted();
            hold_and_act(shop, user, &place.ticket, s).await
        }
        TicketState::Waiting if place.outlook == Outlook::SoldOut => {
            leave(shop, user, s).await;
            shop.progress.finished();
            TurnResult::SawSoldOut
        }
        TicketState::Waiting => TurnResult::Waiting,
        TicketState::Expired => match s.time(Op::Join, shop.seller.join(user)).await {
            Ok(_) => TurnResult::Rejoined,
            Err(_) => TurnResult::Lost,
        },
        TicketState::Used | TicketState::Left => {
            s.unexpected(
                Op::View,
                format!("user {user}'s ticket is {:?} at a visit", place.state),
            );
            TurnResult::Lost
        }
    }
}

/// Leaves the queue; a failure is recorded and otherwise ignored (the user stops anyway).
async fn leave(shop: &Shop, user: u32, s: &mut Samples) {
    let _ = s.time(Op::Leave, shop.seller.leave(user)).await;
}

/// Holds what the user wants (fewer when the seller says fewer are left), then acts on it.
async fn hold_and_act(shop: &Shop, user: u32, admission: &str, s: &mut Samples) -> TurnResult {
    let profile = shop.crowd.profile(user);
    let mut quantity = profile.quantity;
    let hold = loop {
        // A client's idempotency key per admission and quantity, as a browser retrying
        // the same request would send.
        let key = format!("{admission}-{quantity}");
        match s
            .time(Op::Hold, shop.seller.hold(user, quantity, &key))
            .await
        {
            Ok(h) => break h,
            Err(e) => match e.sold_out() {
                // "Only N left": ask for what is left (when the seller says), at least
                // one less than before.
                Some(available) if quantity > 1 => {
                    quantity = available.unwrap_or(quantity - 1).clamp(1, quantity - 1);
                }
                Some(_) => {
                    leave(shop, user, s).await;
                    shop.progress.finished();
                    return TurnResult::GaveUp;
                }
                None => {
                    leave(shop, user, s).await;
                    shop.progress.finished();
                    return TurnResult::Lost;
                }
            },
        }
    };
    let units = hold.units;
    shop.progress.held(units);
    let result = match profile.behaviour {
        Behaviour::Abandon => TurnResult::Abandoned { units },
        Behaviour::Decline => match pay(shop, user, hold.id, numbers::DECLINED, s).await {
            Paid::Failed => TurnResult::Declined { units },
            Paid::Confirmed => unexpected(s, "a declined card was confirmed"),
            Paid::TooLate => TurnResult::TooLate,
            Paid::Lost => TurnResult::Lost,
        },
        Behaviour::PaySuccess | Behaviour::CancelLater => {
            match pay(shop, user, hold.id, numbers::SUCCEEDS, s).await {
                Paid::Confirmed => {
                    shop.progress.sold(i64::from(units));
                    if profile.behaviour == Behaviour::CancelLater {
                        // Not finished: comes back to cancel.
                        return TurnResult::WillCancel {
                            hold: hold.id,
                            units,
                        };
                    }
                    TurnResult::Bought { units }
                }
                Paid::Failed => unexpected(s, "the succeeding card failed"),
                Paid::TooLate => TurnResult::TooLate,
                Paid::Lost => TurnResult::Lost,
            }
        }
    };
    shop.progress.finished();
    result
}

fn unexpected(s: &mut Samples, why: &str) -> TurnResult {
    s.unexpected(Op::Pay, why.to_owned());
    TurnResult::Lost
}

enum Paid {
    Confirmed,
    Failed,
    TooLate,
    Lost,
}

/// Checkout with a sandbox card, which answers at once: the checkout itself settles the
/// hold (no webhook needed).
async fn pay(shop: &Shop, user: u32, hold: HoldId, card: &str, s: &mut Samples) -> Paid {
    match s.time(Op::Pay, shop.seller.pay(user, hold, card)).await {
        Ok(Payment::Confirmed) => Paid::Confirmed,
        Ok(Payment::Failed) => Paid::Failed,
        Ok(Payment::Other(what)) => {
            s.unexpected(Op::Pay, format!("hold {hold}: checkout answered {what}"));
            Paid::Lost
        }
        Err(e) if e.refusal() == Some("HOLD_EXPIRED") => Paid::TooLate,
        Err(_) => Paid::Lost,
    }
}

/// Cancels a confirmed purchase with a full refund.
async fn cancel(shop: &Shop, user: u32, hold: HoldId, units: u32, s: &mut Samples) -> TurnResult {
    let result = match shop.seller.cancel(user, hold, s).await {
        Ok(()) => {
            shop.progress.sold(-i64::from(units));
            TurnResult::Cancelled { units }
        }
        Err(_) => TurnResult::Lost,
    };
    shop.progress.finished();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowd_follows_its_seed_and_mix() {
        let mix = Mix::default();
        let a = Crowd::new(10_000, &mix, 4, 1);
        let b = Crowd::new(10_000, &mix, 4, 1);
        let c = Crowd::new(10_000, &mix, 4, 2);
        let profiles = |c: &Crowd| (0..10_000).map(|i| c.profile(i)).collect::<Vec<_>>();
        assert_eq!(profiles(&a), profiles(&b));
        assert_ne!(profiles(&a), profiles(&c));
        let paying = profiles(&a)
            .iter()
            .filter(|p| p.behaviour == Behaviour::PaySuccess)
            .count();
        assert!((7_600..8_400).contains(&paying), "{paying}");
        assert!(profiles(&a).iter().all(|p| (1..=4).contains(&p.quantity)));
        assert_eq!(a.profile(99_999).quantity, 1);
    }
}
