//! The backend conformance suite: one set of async tests that states the contract of the
//! storage traits. Every backend runs all of it with one line:
//!
//! ```ignore
//! // in a backend crate's tests/conformance.rs, with ticket-core's `testkit` feature:
//! async fn stores() -> ticket_core::Stores { my_backend::connect_for_test().await.stores() }
//! ticket_core::conformance_tests!(stores);
//! ```
//!
//! `stores` must return fresh, isolated stores on every call (its own key prefix, schema or
//! database), so the tests run in parallel. Each test is named after the guarantee it proves
//! and panics with a message naming the broken guarantee.

mod admission;
mod differential;
mod feed;
mod fixture;
mod gate;
mod holds;
mod idempotency;
mod many_servers;
mod notify;
mod payments;
mod policy;
mod queue;
mod reads;
mod sale;
mod state_machine;

pub use admission::*;
pub use differential::{
    Step, agrees_on_random_scenarios, agrees_with_the_memory_backend, scenarios,
};
pub use feed::*;
pub use fixture::{Fixture, SALES_WINDOW, T0, grade, seat, user};
pub use gate::*;
pub use holds::*;
pub use idempotency::*;
pub use many_servers::*;
pub use notify::*;
pub use payments::*;
pub use policy::*;
pub use queue::*;
pub use reads::*;
pub use sale::*;
pub use state_machine::*;

/// Expands to one `#[tokio::test]` per conformance test, each calling `$stores().await` for
/// fresh stores. The calling crate needs `tokio` with the `macros` and `rt-multi-thread`
/// features as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($stores:path) => {
        $crate::conformance_tests!(@tests $stores;
            create_event_is_idempotent_and_conflicts_change_nothing,
            events_are_listed_once_in_id_order_by_keyset_pages,
            hold_never_oversells_under_race,
            seat_holds_are_all_or_nothing_under_race,
            per_user_limit_holds_under_concurrent_holds,
            hold_requires_and_consumes_an_active_admission,
            illegal_transitions_are_rejected_and_change_nothing,
            repeated_transitions_are_idempotent,
            expired_hold_cannot_be_paid_without_sweeper,
            racing_sweepers_return_units_exactly_once,
            every_transition_is_audited,
            duplicate_join_returns_same_ticket_and_position,
            concurrent_joins_are_admitted_in_fifo_order,
            queue_length_cap_answers_queue_full,
            admission_respects_active_cap_and_rate,
            admission_follows_stock_and_sold_out_is_announced,
            pre_queue_is_shuffled_once_with_a_recorded_seed,
            expired_admission_is_unusable_and_frees_its_slot,
            returned_units_wake_the_next_waiting_user,
            leaving_is_idempotent,
            idempotent_repeat_returns_the_same_outcome,
            reused_key_with_other_payload_is_rejected,
            concurrent_repeats_execute_once,
            refusals_are_replayed_and_rejected_input_is_not_stored,
            idempotency_keys_expire_after_retention,
            sales_policy_is_checked_before_stock,
            presale_buyers_queue_unless_the_policy_skips_it,
            policy_changes_apply_at_run_time,
            late_payment_is_rebooked_or_refunded,
            cancellation_returns_units_and_refunds_once,
            stale_payment_failure_changes_nothing,
            paying_due_lists_checkouts_to_poll,
            check_in_admits_each_ticket_once_at_its_own_session,
            check_in_and_cancel_refuse_each_other,
            check_in_and_cancel_exclude_each_other_under_race,
            reads_are_complete_ordered_and_stable_while_64_tasks_write,
            a_holds_trail_is_in_transition_order_within_one_millisecond,
            a_sessions_trail_never_goes_back_in_time,
            counts_follow_every_transition,
            counts_stay_exact_under_race,
            waiting_line_lists_the_line_in_order,
            every_change_is_in_the_feed_once_in_order,
            a_resuming_subscriber_sees_every_change_once_while_64_tasks_write,
            waiting_for_a_change_wakes_on_the_write,
            deliveries_are_claimed_once_and_finished_once,
            leases_are_granted_to_one_holder_at_a_time,
            two_dispatchers_send_each_notification_once,
            a_failing_notifier_is_retried_then_given_up,
            the_sale_switch_follows_its_lifecycle_with_one_record_and_change_per_move,
            a_paused_sale_refuses_new_holds_and_lets_earlier_holds_pay,
            no_hold_lands_after_a_pause_under_race,
            capacity_changes_move_plan_and_stock_together_and_keep_what_is_taken,
            seats_can_be_added_and_free_seats_removed,
            capacity_changes_race_holds_and_payments_without_losing_a_unit,
        );
    };
    (@tests $stores:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::testkit::$name($stores().await).await;
            }
        )+
    };
}
