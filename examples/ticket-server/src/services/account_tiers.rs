//! The tier a buyer buys with: from their account (set only by admins), never from the
//! request.

use ticket_core::{Error, SessionId, TicketRush};

/// The tier a buyer holds and queues with in `session`: of the account's `tiers` (read with
/// the token version, [`crate::http::extract::CallerTiers`]), the highest the session's
/// policy lists; `None` when the account has none the policy knows. Reads the session's
/// policy only when the account has tiers, so a buyer without tiers costs no store read.
pub async fn buyer_tier(
    rush: &TicketRush,
    tiers: &[String],
    session: SessionId,
) -> Result<Option<String>, Error> {
    if tiers.is_empty() {
        return Ok(None);
    }
    let policy = rush.stores().policies.policy(session).await?;
    Ok(highest_known(&policy.tiers, tiers))
}

/// Of `mine`, the tier listed last (highest) in the policy's `ranked` tiers.
fn highest_known(ranked: &[String], mine: &[String]) -> Option<String> {
    ranked.iter().rev().find(|t| mine.contains(t)).cloned()
}

#[cfg(test)]
mod tests {
    use super::highest_known;

    #[test]
    fn the_highest_tier_the_policy_knows_wins() {
        let ranked: Vec<String> = ["BASIC", "SILVER", "GOLD"].map(String::from).to_vec();
        let mine = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            highest_known(&ranked, &mine(&["SILVER", "GOLD", "PLATINUM"])).as_deref(),
            Some("GOLD")
        );
        assert_eq!(highest_known(&ranked, &mine(&["PLATINUM"])), None);
        assert_eq!(highest_known(&ranked, &[]), None);
        assert_eq!(highest_known(&[], &mine(&["GOLD"])), None);
    }
}
