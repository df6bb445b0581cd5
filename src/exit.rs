//! How a command ends, as the process exit status. Operations return an [`Exit`]; only `main`
//! turns it into a number (the README's exit-code table documents them).

/// The end of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success (`plan --detailed-exitcode`: nothing needs doing).
    Ok,
    /// 1: an error, already reported (invalid input, a refused or cancelled apply, …).
    Error,
    /// 2: `plan --detailed-exitcode`: something needs action.
    Changes,
    /// 3: `apply`: a batch rejected or unknown, or recipients held back; `status`: a delivery
    /// failed or a request is unknown.
    Partial,
    /// 4: the state is locked by another run.
    Locked,
    /// 128 + the signal: stopped gracefully by SIGINT (130) or SIGTERM (143).
    Interrupted(i32),
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::Changes => 2,
            Exit::Partial => 3,
            Exit::Locked => 4,
            Exit::Interrupted(sig) => 128 + sig,
        }
    }

    /// The more serious of two ends, by exit status (an interrupt outranks a partial delivery).
    #[must_use]
    pub(crate) fn max(self, other: Exit) -> Exit {
        if other.code() > self.code() { other } else { self }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        // Every status the tool uses (0-4, 130, 143) fits a byte; anything else reads as an error.
        std::process::ExitCode::from(u8::try_from(e.code()).unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_readme_table() {
        let table = [
            (Exit::Ok, 0),
            (Exit::Error, 1),
            (Exit::Changes, 2),
            (Exit::Partial, 3),
            (Exit::Locked, 4),
            (Exit::Interrupted(2), 130),
            (Exit::Interrupted(15), 143),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
        assert_eq!(Exit::Partial.max(Exit::Interrupted(2)), Exit::Interrupted(2));
        assert_eq!(Exit::Partial.max(Exit::Ok), Exit::Partial);
    }
}
