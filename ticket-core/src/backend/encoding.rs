//! Rules of [`crate::model`] encoded as tables and strings, for code that runs inside a
//! store (a Lua script, a PL/pgSQL function) and must apply a rule in the same atomic step
//! as the change it guards.
//!
//! The rule stays written once, in Rust; the store only looks its answer up. Every function
//! here is pure and cheap enough to call once at start-up and cache.

use crate::clock::Timestamp;
use crate::error::Refusal;
use crate::model::check_in::blocked_by_check_in;
use crate::model::hold::{Decision, HoldState, StockEffect, decide_parts, rebook_allowed_from};

/// The state machine's decision toward `to` for every current state, as four one-letter
/// codes each, so a store looks the decision up where the hold is stored and the state
/// machine ([`crate::model::hold::decide`]) stays written once.
///
/// The codes are for (not due, not re-booked), (not due, re-booked), (due, not re-booked),
/// (due, re-booked): `A` already there, `X` expire instead, `D` not due, `I` illegal, and
/// apply with stock effect `0` none, `S` held → sold, `V` held → available, `C` sold →
/// available. States come in the order of [`HoldState::ALL`].
pub fn decision_codes(to: HoldState) -> Vec<(HoldState, String)> {
    let expires = Timestamp::from_millis(1);
    HoldState::ALL
        .into_iter()
        .map(|from| {
            let codes = [(0, false), (0, true), (1, false), (1, true)]
                .into_iter()
                .map(|(now, rebooked)| {
                    match decide_parts(from, expires, rebooked, to, Timestamp::from_millis(now)) {
                        Ok(Decision::AlreadyThere) => 'A',
                        Ok(Decision::ExpireInstead) => 'X',
                        Ok(Decision::Apply(StockEffect::None)) => '0',
                        Ok(Decision::Apply(StockEffect::HeldToSold)) => 'S',
                        Ok(Decision::Apply(StockEffect::HeldToAvailable)) => 'V',
                        Ok(Decision::Apply(StockEffect::SoldToAvailable)) => 'C',
                        Err(Refusal::NotDue { .. }) => 'D',
                        Err(_) => 'I',
                    }
                })
                .collect();
            (from, codes)
        })
        .collect()
}

/// `",EXPIRED,RELEASED,…,"`: the states from which a late payment may be re-booked
/// ([`crate::model::hold::rebook_allowed_from`]), comma-delimited on both ends so a store can
/// test membership with a substring search (`,STATE,`).
pub fn rebookable_states_list() -> String {
    let mut s = String::from(",");
    for st in HoldState::ALL {
        if rebook_allowed_from(st).is_ok() {
            s.push_str(st.as_str());
            s.push(',');
        }
    }
    s
}

/// The states from which a move to `to` is refused once a ticket of the hold was checked in
/// ([`crate::model::check_in::blocked_by_check_in`]), as `",CONFIRMED,"` (comma-delimited on
/// both ends, for a substring search), or `""` when no state is blocked toward `to`.
pub fn check_in_blocked_list(to: HoldState) -> String {
    let from: Vec<&str> = HoldState::ALL
        .into_iter()
        .filter(|from| blocked_by_check_in(*from, to))
        .map(HoldState::as_str)
        .collect();
    if from.is_empty() {
        String::new()
    } else {
        format!(",{},", from.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hold::decide_state;

    #[test]
    fn decision_codes_match_the_state_machine() {
        for to in HoldState::ALL {
            let table = decision_codes(to);
            assert_eq!(table.len(), HoldState::ALL.len());
            for (from, codes) in table {
                assert_eq!(codes.len(), 4);
                // Not due, not re-booked: exactly the state rule.
                let expected = match decide_state(
                    from,
                    Timestamp::from_millis(1),
                    to,
                    Timestamp::from_millis(0),
                ) {
                    Ok(Decision::AlreadyThere) => 'A',
                    Ok(Decision::ExpireInstead) => 'X',
                    Ok(Decision::Apply(StockEffect::None)) => '0',
                    Ok(Decision::Apply(StockEffect::HeldToSold)) => 'S',
                    Ok(Decision::Apply(StockEffect::HeldToAvailable)) => 'V',
                    Ok(Decision::Apply(StockEffect::SoldToAvailable)) => 'C',
                    Err(Refusal::NotDue { .. }) => 'D',
                    Err(_) => 'I',
                };
                assert_eq!(codes.chars().next(), Some(expected), "{from:?} -> {to:?}");
            }
        }
        // A re-booked hold is never refunded.
        let refund = decision_codes(HoldState::Refunded);
        let expired = refund.iter().find(|(f, _)| *f == HoldState::Expired);
        assert_eq!(expired.map(|(_, c)| c.as_str()), Some("0I0I"));
    }

    #[test]
    fn lists_are_comma_delimited_on_both_ends() {
        assert_eq!(
            rebookable_states_list(),
            ",EXPIRED,RELEASED,PAYMENT_FAILED,"
        );
        assert_eq!(check_in_blocked_list(HoldState::Cancelled), ",CONFIRMED,");
        assert_eq!(check_in_blocked_list(HoldState::Refunded), "");
    }
}
