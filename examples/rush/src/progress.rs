//! Live counters of a run: drawn as a progress bar on stderr (indicatif) and sampled into
//! a timeline for the report.
//!
//! These are the simulator's own counters, for people watching; the correctness figures of
//! the report come from the store ([`crate::checks`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use ticket_core::{Clock, Timestamp};

/// How often the bar is redrawn and the timeline sampled.
const TICK: Duration = Duration::from_millis(100);

/// One sample of the live counters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds since the run started (wall clock).
    pub t_s: f64,
    /// Seconds of the library's clock since the sale opened (the simulated clock moves in
    /// jumps; the system clock moves with `t_s`).
    pub clock_s: f64,
    /// Users who joined.
    pub joined: u64,
    /// Users who found themselves admitted.
    pub admitted: u64,
    /// Holds made.
    pub holds: u64,
    /// Units held so far (every hold counted once).
    pub held_units: u64,
    /// Units paid for, less units cancelled.
    pub sold_units: i64,
    /// Users who are done (bought, declined, abandoned, cancelled, gave up, sold out).
    pub done: u64,
}

/// The live counters, shared by the workers.
#[derive(Debug)]
pub struct Progress {
    joined: AtomicU64,
    admitted: AtomicU64,
    holds: AtomicU64,
    held_units: AtomicU64,
    sold_units: AtomicI64,
    done: AtomicU64,
    users: u64,
    start: Instant,
    clock: Arc<dyn Clock>,
    opened: Timestamp,
    bar: ProgressBar,
    timeline: parking_lot::Mutex<Vec<Point>>,
    stop: AtomicBool,
}

impl Progress {
    /// Counters for `users` users, timed from `start`, with the library's `clock` read
    /// against `opened`; a bar on stderr when `visible`.
    pub fn new(
        users: u32,
        visible: bool,
        start: Instant,
        clock: Arc<dyn Clock>,
        opened: Timestamp,
    ) -> Self {
        let bar = if visible {
            let bar = ProgressBar::with_draw_target(
                Some(u64::from(users)),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            let style = ProgressStyle::with_template(
                "{elapsed:>4} [{bar:30}] {pos}/{len} users done · {msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        } else {
            ProgressBar::hidden()
        };
        Self {
            joined: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            holds: AtomicU64::new(0),
            held_units: AtomicU64::new(0),
            sold_units: AtomicI64::new(0),
            done: AtomicU64::new(0),
            users: u64::from(users),
            start,
            clock,
            opened,
            bar,
            timeline: parking_lot::Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        }
    }

    /// A user joined.
    pub fn joined(&self) {
        self.joined.fetch_add(1, Ordering::Relaxed);
    }

    /// A user found themselves admitted.
    pub fn admitted(&self) {
        self.admitted.fetch_add(1, Ordering::Relaxed);
    }

    /// A hold of `units` was made.
    pub fn held(&self, units: u32) {
        self.holds.fetch_add(1, Ordering::Relaxed);
        self.held_units
            .fetch_add(u64::from(units), Ordering::Relaxed);
    }

    /// `units` were paid for (negative: cancelled).
    pub fn sold(&self, units: i64) {
        self.sold_units.fetch_add(units, Ordering::Relaxed);
    }

    /// A user is done.
    pub fn finished(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn point(&self) -> Point {
        Point {
            t_s: self.start.elapsed().as_secs_f64(),
            clock_s: self.clock.now().since(self.opened).as_secs_f64(),
            joined: self.joined.load(Ordering::Relaxed),
            admitted: self.admitted.load(Ordering::Relaxed),
            holds: self.holds.load(Ordering::Relaxed),
            held_units: self.held_units.load(Ordering::Relaxed),
            sold_units: self.sold_units.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
        }
    }

    /// Samples the counters into the timeline and redraws the bar.
    pub fn tick(&self) {
        let p = self.point();
        self.timeline.lock().push(p);
        if !self.bar.is_hidden() {
            self.bar.set_position(if p.joined < self.users {
                p.joined
            } else {
                p.done
            });
            let stage = if p.joined < self.users {
                "joining"
            } else {
                "selling"
            };
            self.bar.set_message(format!(
                "{stage}: joined {} · admitted {} · held {} units · sold {} units",
                p.joined, p.admitted, p.held_units, p.sold_units
            ));
        }
    }

    /// Ticks every 100 ms on a thread of its own (so the bar moves even while the
    /// runtime's threads are busy) until the returned guard is finished or dropped.
    pub fn start_ticking(self: &Arc<Self>) -> Ticking {
        let me = self.clone();
        let thread = std::thread::spawn(move || {
            while !me.stop.load(Ordering::Relaxed) {
                me.tick();
                std::thread::park_timeout(TICK);
            }
        });
        Ticking {
            progress: self.clone(),
            thread: Some(thread),
        }
    }

    fn stop_ticking(&self, thread: Option<std::thread::JoinHandle<()>>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = thread {
            t.thread().unpark();
            // A ticker that panicked only loses the bar.
            let _ = t.join();
        }
        self.tick();
        self.bar.finish_and_clear();
    }
}

/// The ticking thread of a [`Progress`]; dropping it stops the thread and clears the bar.
#[derive(Debug)]
pub struct Ticking {
    progress: Arc<Progress>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticking {
    /// Stops ticking, takes a last sample, clears the bar, and returns the timeline.
    pub fn finish(mut self) -> Vec<Point> {
        self.progress.stop_ticking(self.thread.take());
        std::mem::take(&mut *self.progress.timeline.lock())
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.progress.stop_ticking(self.thread.take());
        }
    }
}
