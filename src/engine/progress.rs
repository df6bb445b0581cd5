//! What an apply shows while it sends: one progress display (requests and recipients done, rate,
//! elapsed, ETA) on a terminal; without one, a plain line at most every [`PLAIN_EVERY`] or tenth
//! of the requests, so a CI log stays readable at 300 batches; per-batch lines only with
//! `--verbose`, printed in batch order whatever order the batches finish in.
//!
//! The text of the status line is a pure function of the counts and the elapsed time
//! ([`status_line`]), tested on its own; [`Progress`] only decides when to show it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a CI log waits for a progress line.
pub(crate) const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// How much is done of how much.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) requests: usize,
    pub(crate) total_requests: usize,
    pub(crate) recipients: usize,
    pub(crate) total_recipients: usize,
}

use crate::units::clock;
use crate::units::thousands;

/// `12/300 requests, 12,000/300,000 recipients · 9.8/s · 0:12 · 0:28 left`: short enough to
/// fit a 100-column terminal beside the bar at 300,000 recipients.
pub(crate) fn status_line(c: Counts, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let mut parts = vec![format!(
        "{}/{} requests, {}/{} recipients",
        c.requests,
        c.total_requests,
        thousands(c.recipients),
        thousands(c.total_recipients)
    )];
    if secs >= 0.5 && c.requests > 0 {
        parts.push(format!("{:.1}/s", c.requests as f64 / secs));
    }
    parts.push(clock(elapsed));
    if c.requests > 0 && c.requests < c.total_requests && secs >= 0.5 {
        let left = secs / c.requests as f64 * (c.total_requests - c.requests) as f64;
        parts.push(format!("{} left", clock(Duration::from_secs_f64(left))));
    }
    parts.join(" · ")
}

/// Whether a plain line is due: every tenth of the requests, or after [`PLAIN_EVERY`].
pub(crate) fn plain_due(done: usize, total: usize, last_done: usize, since_last: Duration) -> bool {
    let step = total.div_ceil(10).max(1);
    done == total || done / step > last_done / step || since_last >= PLAIN_EVERY
}

struct Inner {
    counts: Counts,
    /// Per-batch lines (`--verbose`) waiting for the batches before them.
    waiting: BTreeMap<usize, String>,
    /// Batches done and not yet passed by `next`.
    finished: std::collections::BTreeSet<usize>,
    /// The first batch not done yet.
    next: usize,
    last_plain: Instant,
    last_plain_done: usize,
}

/// The display of one send loop.
pub(crate) struct Progress {
    shell: crate::shell::Shell,
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    verbose: bool,
    color: bool,
    started: Instant,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").finish_non_exhaustive()
    }
}

impl Progress {
    /// For `total` requests to `recipients` people, shown through `shell` (`--quiet`: nothing but
    /// failures; `--verbose`: a line per batch); failures red when `color`.
    pub(crate) fn new(total: usize, recipients: usize, shell: crate::shell::Shell, color: bool) -> Progress {
        let (quiet, verbose) = (shell.quiet, shell.verbose);
        let terminal = std::io::stderr().is_terminal();
        let bar = (terminal && !quiet).then(|| {
            let pb = indicatif::ProgressBar::new(total as u64);
            pb.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{bar:20}] {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        });
        let counts = Counts { total_requests: total, total_recipients: recipients, ..Counts::default() };
        let now = Instant::now();
        Progress {
            shell,
            bar,
            plain: !terminal && !quiet,
            verbose,
            color,
            started: now,
            inner: Mutex::new(Inner {
                counts,
                waiting: BTreeMap::new(),
                finished: std::collections::BTreeSet::new(),
                next: 0,
                last_plain: now,
                last_plain_done: 0,
            }),
        }
    }

    /// Batch `index` is done for `recipients` people; `line` says how, `bad` when it failed.
    pub(crate) fn done(&self, index: usize, recipients: usize, line: String, bad: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.counts.requests += 1;
        inner.counts.recipients += recipients;
        let line = if bad && self.color { format!("\x1b[31m{line}\x1b[0m") } else { line };
        if self.verbose || bad {
            inner.waiting.insert(index, line);
        }
        // Lines in batch order: a batch's line waits for those before it.
        inner.finished.insert(index);
        let mut ready = Vec::new();
        loop {
            let next = inner.next;
            if !inner.finished.remove(&next) {
                break;
            }
            ready.extend(inner.waiting.remove(&next));
            inner.next += 1;
        }
        let status = status_line(inner.counts, self.started.elapsed());
        match &self.bar {
            Some(pb) => {
                for l in ready {
                    pb.println(l);
                }
                pb.set_position(inner.counts.requests as u64);
                pb.set_message(status);
            }
            None => {
                for l in ready {
                    self.shell.errln(l);
                }
                let since = inner.last_plain.elapsed();
                if self.plain
                    && plain_due(inner.counts.requests, inner.counts.total_requests, inner.last_plain_done, since)
                {
                    self.shell.errln(format!("progress: {status}"));
                    inner.last_plain = Instant::now();
                    inner.last_plain_done = inner.counts.requests;
                }
            }
        }
    }

    /// Prints the lines still waiting (behind batches that never ran: the run stopped), clears
    /// the display, and returns how long the loop took.
    pub(crate) fn finish(&self) -> Duration {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let rest: Vec<String> = std::mem::take(&mut inner.waiting).into_values().collect();
        match &self.bar {
            Some(pb) => {
                for l in rest {
                    pb.println(l);
                }
                pb.finish_and_clear();
            }
            None => {
                for l in rest {
                    self.shell.errln(l);
                }
            }
        }
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_how_far_how_fast_and_how_long() {
        let c = Counts { requests: 12, total_requests: 300, recipients: 12_000, total_recipients: 300_000 };
        assert_eq!(
            status_line(c, Duration::from_secs(12)),
            "12/300 requests, 12,000/300,000 recipients · 1.0/s · 0:12 · 4:48 left"
        );
        let done = Counts { requests: 300, recipients: 300_000, ..c };
        assert_eq!(
            status_line(done, Duration::from_secs(3725)),
            "300/300 requests, 300,000/300,000 recipients · 0.1/s · 1:02:05"
        );
        assert_eq!(status_line(Counts::default(), Duration::ZERO), "0/0 requests, 0/0 recipients · 0:00");
    }

    #[test]
    fn plain_lines_every_tenth_or_every_ten_seconds() {
        let s = Duration::from_secs(1);
        assert!(!plain_due(29, 300, 0, s));
        assert!(plain_due(30, 300, 29, s), "a tenth crossed");
        assert!(!plain_due(31, 300, 30, s));
        assert!(plain_due(31, 300, 30, PLAIN_EVERY), "ten seconds passed");
        assert!(!plain_due(31, 300, 30, Duration::from_millis(9_999)));
        assert!(plain_due(300, 300, 299, s), "the last one");
        assert!(plain_due(1, 1, 0, s));
        assert!(plain_due(1, 3, 0, s), "few requests: each is a tenth or more");
    }
}
