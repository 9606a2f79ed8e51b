//! Test support shared by every storage's tests.
//!
//! `suite` is the behavioural test suite every backend runs unchanged: a test
//! file builds a [`Subject`] for its storage and invokes [`storage_suite!`].
#![allow(dead_code)]

pub mod decide;
pub mod remote;
pub mod suite;

pub use suite::Subject;

/// Generates one `#[test]` per behaviour of the shared suite: every one of
/// them, for every backend.
///
/// `$make` is an expression (usually a function path) called once per test,
/// which returns a fresh [`Subject`]: a storage isolated from the other tests
/// (its own memory storage, or its own key prefix on a shared server).
///
/// `lacks: [..]` declares the [`Capability`](suite::Capability)s the backend
/// does not have: the tests of such a capability assert that the storage
/// refuses it (no support offered, the strategy refused at construction),
/// and every capability not declared missing is asserted present. `skip:
/// [..]` names tests this file runs otherwise (each with a comment saying
/// why at the call site); a skipped test says so on stderr, and a name that
/// is not a suite test fails `skip_list_names_suite_tests`.
///
/// ```ignore
/// #[macro_use]
/// mod common;
/// fn subject() -> common::Subject { /* ... */ }
/// storage_suite!(subject);
/// storage_suite!(subject; lacks: [MovingWindow]; skip: []);
/// ```
#[macro_export]
macro_rules! storage_suite {
    ($make:expr) => {
        $crate::storage_suite!($make; lacks: []; skip: []);
    };
    ($make:expr; lacks: $lacks:tt; skip: $skip:tt) => {
        $crate::storage_suite!(@tests $make; $lacks; $skip;
            incr_adds_amounts,
            incr_within_counts_and_compares_with_the_limit,
            keys_are_independent,
            counter_expires_after_its_window,
            get_expiry_reports_the_window_end,
            elastic_expiry_pushes_the_window_out,
            clear_removes_counter_and_moving_window,
            reset_removes_everything,
            check_reports_health,
            bad_arguments_are_typed_errors,
            acquire_entry_admits_up_to_the_limit,
            acquire_entry_refuses_amount_over_limit,
            acquire_entry_large_amounts,
            moving_window_frees_up_as_entries_age,
            moving_window_start_is_the_oldest_entry,
            sliding_window_counts_and_refuses,
            sliding_window_weights_the_previous_window,
            clear_sliding_window_removes_both_buckets,
            concurrent_incr_counts_every_hit,
            concurrent_incr_within_is_exact,
            concurrent_acquire_entry_is_exact,
            concurrent_sliding_window_is_exact,
        );
    };
    (@lacks [$($capability:ident),* $(,)?]) => {
        &[$(common::suite::Capability::$capability),*]
    };
    (@tests $make:expr; $lacks:tt; [$($skip:ident),* $(,)?]; $($name:ident),* $(,)?) => {
        const SUITE_SKIPS: &[&str] = &[$(stringify!($skip)),*];

        #[test]
        fn skip_list_names_suite_tests() {
            let suite = [$(stringify!($name)),*];
            for skipped in SUITE_SKIPS {
                assert!(suite.contains(skipped), "`{skipped}` is not a suite test");
            }
        }

        $(
            #[test]
            fn $name() {
                if SUITE_SKIPS.contains(&stringify!($name)) {
                    eprintln!("{}: in this backend's skip list", stringify!($name));
                    return;
                }
                let mut subject = $make();
                subject.lacks = $crate::storage_suite!(@lacks $lacks);
                common::suite::$name(&subject);
            }
        )*
    };
}

/// A subject whose every call goes through the asynchronous API: the suite's
/// synchronous calls are driven through `storage`'s futures by
/// [`Bridged`](limitstore::aio::Bridged).
#[cfg(feature = "async")]
pub fn via_async(
    storage: std::sync::Arc<dyn limitstore::aio::AsyncStorage>,
    advance: Box<dyn Fn(std::time::Duration) + Send + Sync>,
    slack: f64,
) -> Subject {
    Subject {
        storage: std::sync::Arc::new(limitstore::aio::Bridged::new(storage)),
        advance,
        slack,
        lacks: &[],
    }
}
