//! Group commit: one run of an expensive operation (an fsync) serves every caller that was
//! waiting when it started.

use std::io;
use std::sync::{Condvar, Mutex, PoisonError};

/// Runs an operation with group-commit semantics: a caller is served by a run that started
/// after it called; one run serves every caller that was waiting when it started.
#[derive(Debug, Default)]
pub(crate) struct GroupRun {
    state: Mutex<GroupState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    next: u64,
    covered: u64,
    running: bool,
}

impl GroupRun {
    pub(crate) fn run(&self, op: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = g.next;
        g.next += 1;
        loop {
            if g.covered > ticket {
                return Ok(());
            }
            if g.running {
                g = self.cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            g.running = true;
            let start = g.next;
            drop(g);
            let r = op();
            g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            g.running = false;
            if r.is_ok() {
                g.covered = g.covered.max(start);
            }
            self.cv.notify_all();
            // On failure the waiters try again themselves; this caller reports it.
            return r;
        }
    }
}
