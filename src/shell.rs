//! Every line kore-notify prints for people and scripts goes through one [`Shell`] (cargo's
//! `Shell` is the model): results on standard output, information, warnings, progress and errors
//! on standard error, with `--quiet` and `--verbose` decided here once. A new sink attaches here
//! (the `--events` audit stream attaches to the state sessions instead: it records what the state
//! records, not what people read).
//!
//! The shell routes text; making untrusted text safe for a terminal or a CI log stays with the
//! caller, which knows what is untrusted (`crate::safe`).

use std::io::Write;

/// Where output goes, and how much of it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Shell {
    /// `--quiet`: results and errors only.
    pub(crate) quiet: bool,
    /// `--verbose`: more detail.
    pub(crate) verbose: bool,
    /// Colours on standard error.
    pub(crate) err_color: bool,
    /// Where results go.
    pub(crate) results: Results,
}

/// Where results go: standard output, unless it carries the `--events -` stream (which a reader
/// parses line by line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Results {
    #[default]
    Stdout,
    Stderr,
}

// `out` and `err` write to the process's streams today; they take `self` because the shell is
// where another sink attaches.
#[allow(clippy::unused_self)]
impl Shell {
    /// A result, on standard output (what scripts read), as it is.
    pub(crate) fn out(self, text: impl AsRef<str>) {
        if self.results == Results::Stderr {
            return self.err(text);
        }
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_ref().as_bytes());
        let _ = o.flush();
    }

    /// A result line on standard output.
    pub(crate) fn outln(self, text: impl AsRef<str>) {
        self.out(format!("{}\n", text.as_ref()));
    }

    /// Text on standard error whatever `--quiet` says (prompts, failures, decisions to make).
    pub(crate) fn err(self, text: impl AsRef<str>) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_ref().as_bytes());
        let _ = e.flush();
    }

    /// A line on standard error whatever `--quiet` says.
    pub(crate) fn errln(self, text: impl AsRef<str>) {
        self.err(format!("{}\n", text.as_ref()));
    }

    /// Information for people, on standard error, unless `--quiet`.
    pub(crate) fn info(self, text: impl AsRef<str>) {
        if !self.quiet {
            self.errln(text);
        }
    }

    /// `error: …`, red on a terminal.
    pub(crate) fn error(self, text: impl AsRef<str>) {
        let head = if self.err_color { "\x1b[31;1merror\x1b[0m" } else { "error" };
        self.errln(format!("{head}: {}", text.as_ref()));
    }
}
