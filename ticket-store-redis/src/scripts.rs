//! The Lua scripts, each loaded once per connection and called by SHA (`EVALSHA`); the
//! `redis` crate reloads a script after `NOSCRIPT` (a restarted or flushed server).

use redis::Script;

macro_rules! session_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../lua/lib/base.lua"),
            "\n",
            include_str!("../lua/lib/holds.lua"),
            "\n",
            include_str!("../lua/lib/stock.lua"),
            "\n",
            include_str!("../lua/lib/tickets.lua"),
            "\n",
            include_str!("../lua/lib/feed.lua"),
            "\n",
            include_str!("../lua/lib/commit.lua"),
            "\n",
            include_str!(concat!("../lua/", $file))
        ))
    };
}

/// Every script of the backend.
pub(crate) struct Scripts {
    pub(crate) create_session: Script,
    pub(crate) drop_session: Script,
    pub(crate) snapshot: Script,
    pub(crate) hold: Script,
    pub(crate) transition: Script,
    pub(crate) check_in: Script,
    pub(crate) rebook: Script,
    pub(crate) expire: Script,
    pub(crate) hold_read: Script,
    pub(crate) paying_read: Script,
    pub(crate) audit_page: Script,
    pub(crate) feed_read: Script,
    pub(crate) line_read: Script,
    pub(crate) delivery_claim: Script,
    pub(crate) delivery_finish: Script,
    pub(crate) checkpoint: Script,
    pub(crate) lease: Script,
    pub(crate) join: Script,
    pub(crate) view: Script,
    pub(crate) admit: Script,
    pub(crate) leave: Script,
    pub(crate) stats: Script,
    pub(crate) draw_read: Script,
    pub(crate) draw_commit: Script,
    pub(crate) idempotency: Script,
    pub(crate) claim_ids: Script,
    pub(crate) sale_state: Script,
    pub(crate) capacity: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            create_session: session_script!("create_session.lua"),
            drop_session: session_script!("drop_session.lua"),
            snapshot: session_script!("snapshot.lua"),
            hold: session_script!("hold.lua"),
            transition: session_script!("transition.lua"),
            check_in: session_script!("check_in.lua"),
            rebook: session_script!("rebook.lua"),
            expire: session_script!("expire.lua"),
            hold_read: session_script!("hold_read.lua"),
            paying_read: session_script!("paying_read.lua"),
            audit_page: session_script!("audit_page.lua"),
            feed_read: session_script!("feed_read.lua"),
            line_read: session_script!("line_read.lua"),
            delivery_claim: Script::new(include_str!("../lua/delivery_claim.lua")),
            delivery_finish: Script::new(include_str!("../lua/delivery_finish.lua")),
            checkpoint: Script::new(include_str!("../lua/checkpoint.lua")),
            lease: Script::new(include_str!("../lua/lease.lua")),
            join: session_script!("join.lua"),
            view: session_script!("view.lua"),
            admit: session_script!("admit.lua"),
            leave: session_script!("leave.lua"),
            stats: session_script!("stats.lua"),
            draw_read: session_script!("draw_read.lua"),
            draw_commit: session_script!("draw_commit.lua"),
            idempotency: Script::new(include_str!("../lua/idempotency.lua")),
            claim_ids: Script::new(include_str!("../lua/claim_ids.lua")),
            sale_state: session_script!("sale_state.lua"),
            capacity: session_script!("capacity.lua"),
        }
    }
}
