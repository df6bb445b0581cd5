//! Command-line interface: parsing, and the settings every command shares resolved once (the
//! only place the environment, the terminal and the clock are read). Every command is a thin
//! wrapper over an operation in `ops`, which knows nothing of clap.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clock::Clock;
use crate::diag::DiagFormat;
use crate::error::{Error, Result};
use crate::exit::Exit;
/// The environment seam, so a library caller can name what [`ProcessEnv`] implements.
pub use crate::interp::Env;
use crate::ops::{self, Global};
pub(crate) use crate::schema::{SchemaName, schema};

/// `0.1.0 (commit 0123456789ab, x86_64-unknown-linux-gnu)`.
pub(crate) const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KORE_NOTIFY_COMMIT"),
    ", ",
    env!("KORE_NOTIFY_BUILD_TRIPLE"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "kore-notify",
    version = LONG_VERSION,
    about = "Declarative Kore.ai Proactive Notifications: plan who receives what, apply at most once."
)]
pub(crate) struct Cli {
    /// Run as if started in DIR (like `git -C` and `terraform -chdir`).
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub(crate) chdir: Option<PathBuf>,
    /// Config file (default: kore-notify.yaml, or kore-notify.yml, in this or the nearest parent directory).
    #[arg(long, global = true, env = "KORE_NOTIFY_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// When to use colours (NO_COLOR is respected in auto mode).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
    /// Print only results and errors.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
    /// Print more detail (every recipient in plans, every failure in status, a line per batch in
    /// apply).
    #[arg(long, short, global = true)]
    pub(crate) verbose: bool,
    /// Append every change recorded in the state (intents, outcomes, statuses, decisions) and a
    /// closing summary to FILE as JSON lines (`-`: standard output): an audit log. Schema:
    /// `kore-notify schema events`. No secrets, no identities in clear.
    #[arg(long, global = true, env = "KORE_NOTIFY_EVENTS", value_name = "FILE")]
    pub(crate) events: Option<String>,
    /// The target (a name under `targets:` in kore-notify.yaml) to work on. `validate` and `plan`
    /// cover every target without it; `apply`, `status`, `report` and `state` need one when the config has
    /// several.
    #[arg(long, global = true, env = "KORE_NOTIFY_TARGET", value_name = "NAME")]
    pub(crate) target: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub(crate) enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub(crate) enum ReportFormat {
    Html,
    Markdown,
    Csv,
    Json,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub(crate) enum OutFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Check config and manifests; report every problem with file:line:column. Exit 0 valid, 1 not.
    Validate {
        /// Manifest files or directories (default: the config's `manifests`).
        paths: Vec<String>,
        /// Diagnostics as text (with source snippets) or JSON; `::error` lines when GITHUB_ACTIONS=true.
        #[arg(long, value_enum, default_value_t = OutFormat::Text)]
        format: OutFormat,
    },
    /// Show exactly who would receive what. No network, no credentials.
    Plan {
        /// text (for terminals), json (versioned, schemas/plan.schema.json) or markdown (a pull-request comment).
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Save the plan; `apply FILE` applies exactly it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 0 when nothing needs doing, 2 when apply would send or record something or
        /// recipients are held back by unknown requests (a decision is needed), 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        #[command(flatten)]
        retry: RetryArgs,
        /// Fail (exit 1, after printing the plan) when it would message more recipients than this,
        /// as apply would refuse it. Empty or 0: no limit.
        #[arg(long, env = "KORE_NOTIFY_MAX_RECIPIENTS", value_name = "N")]
        max_recipients: Option<usize>,
        /// The commit planned against, shown in the markdown comment (hex).
        #[arg(long, env = "KORE_NOTIFY_PLAN_COMMIT", value_name = "SHA")]
        commit: Option<String>,
        /// The CI run that made the plan, linked from the markdown comment (https).
        #[arg(long, env = "KORE_NOTIFY_RUN_URL", value_name = "URL")]
        run_url: Option<String>,
        /// The repository's web address (https://github.com/OWNER/REPO): the markdown comment links
        /// each notification to its manifest line at --commit.
        #[arg(long, env = "KORE_NOTIFY_REPO_URL", value_name = "URL")]
        repo_url: Option<String>,
        /// The directory of the base version's kore-notify.yaml (a checkout of the target
        /// branch): show, for everyone who would get a second message, what changed for them.
        #[arg(long, env = "KORE_NOTIFY_COMPARE_TO", value_name = "DIR")]
        compare_to: Option<PathBuf>,
    },
    /// Send what the plan shows, at most once per recipient and content.
    Apply(ApplyArgs),
    /// Send each notification the plan would send, its real texts, to test identities only (a
    /// reviewer), through the same bot and channel; recorded in a test ledger, never in the
    /// recipients' state. At most once per identity, variant and content unless --again.
    TestSend(TestSendArgs),
    /// Show delivery status (from state; --refresh asks Kore.ai).
    Status {
        /// Only these notification keys.
        keys: Vec<String>,
        /// Ask the Kore.ai status APIs about every request that is not yet terminal, and record the answers.
        #[arg(long)]
        refresh: bool,
        /// With --refresh: status requests in flight at once (within the rate limits).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallelism: u16,
        /// text, json, or markdown (a CI job summary: recipients masked).
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Delivery report from the state: funnel, failure reasons, totals per channel, time series.
    /// HTML (self-contained, charts), CSV (one row per recipient, joined to the audience),
    /// markdown (a pull-request comment) or JSON. No network, no credentials. One target
    /// (--target when the config has several).
    Report {
        /// Only these notification keys.
        #[arg(long = "key", value_name = "KEY")]
        keys: Vec<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// Write the report to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Mask identities and parameter values (`j***@e***.com ~3fa2`), for artifacts and comments.
        #[arg(long)]
        mask: bool,
    },
    /// Inspect or edit the state.
    #[command(subcommand)]
    State(StateCommand),
    /// Run a local Kore.ai API emulator (loopback) for rehearsals and tests.
    #[cfg(feature = "emulator")]
    Emulator(EmulatorArgs),
    /// Start a repository: a config, a sample manifest per API version, the JSON Schemas, the
    /// GitHub workflows and .gitignore lines. Refuses to overwrite anything or to write through a
    /// symbolic link; all or nothing (a failure removes what it wrote).
    Init {
        /// The directory (created if needed; default: the current one).
        dir: Option<PathBuf>,
    },
    /// Show a plan saved with `plan --out`, without recomputing it (refused if it was edited).
    Show {
        /// The plan file.
        plan_file: PathBuf,
        /// text, json or markdown.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the version, the commit it was built from and the build target.
    Version {
        /// text or json.
        #[arg(long, value_enum, default_value_t = OutFormat::Text)]
        format: OutFormat,
    },
    /// Print a JSON Schema.
    Schema {
        /// Which schema to print.
        #[arg(value_enum, default_value_t = SchemaName::Manifest)]
        name: SchemaName,
    },
}

#[derive(Args, Debug)]
pub(crate) struct ApplyArgs {
    /// A plan saved with `plan --out`: sent exactly as it shows, or refused (if it was edited, or
    /// the state or manifests changed since).
    pub(crate) plan_file: Option<PathBuf>,
    /// Do not ask for confirmation (for CI).
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) parallelism: u16,
    /// Refuse to message more recipients than this. Empty or 0: no limit.
    #[arg(long, env = "KORE_NOTIFY_MAX_RECIPIENTS", value_name = "N")]
    pub(crate) max_recipients: Option<usize>,
    #[command(flatten)]
    pub(crate) retry: RetryArgs,
    /// Poll delivery statuses until every request is terminal.
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long --wait polls, e.g. 90s, 10m, 1h.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// The reviews of the pull request that brought the commit being applied (JSON, `kore-notify
    /// schema approvals`; the workflow writes it), for the policy's `require` rules. A missing or
    /// malformed file, or one of another commit, refuses the apply: nothing is sent.
    #[arg(long, env = "KORE_NOTIFY_APPROVALS", value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
    /// Break glass: send despite the policy's `require` rules (never despite a `deny`), recorded in
    /// the state with --reason, the actor and the run. Needs --reason.
    #[arg(long, requires = "reason")]
    pub(crate) override_policy: bool,
    /// Send KEY on a target with `promoteFrom` although its content was not proven on the other
    /// target: the override is recorded in the state with --reason, who and when. Repeatable.
    #[arg(long, value_name = "KEY", requires = "reason")]
    pub(crate) skip_promotion: Vec<String>,
    /// Why a gate is passed (with --override-policy or --skip-promotion; one line, recorded in the
    /// state).
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct TestSendArgs {
    /// A plan saved with `plan --out`: test what it sends (refused if stale, as apply would).
    pub(crate) plan_file: Option<PathBuf>,
    /// A test identity (on every channel), e.g. you@example.com. Repeatable.
    #[arg(long, value_name = "IDENTITY", num_args = 1..)]
    pub(crate) to: Vec<String>,
    /// A reviewer under `reviewers:` in kore-notify.yaml: their identity on each channel.
    #[arg(long, value_name = "LOGIN")]
    pub(crate) reviewer: Option<String>,
    /// Only these notifications (default: every one the plan sends). Repeatable.
    #[arg(long, value_name = "KEY", num_args = 1..)]
    pub(crate) key: Vec<String>,
    /// Distinct texts per notification, from its first recipients' parameters and custom messages.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub(crate) variants: u16,
    /// Send again what the test ledger holds as sent (or unknown) to these identities.
    #[arg(long)]
    pub(crate) again: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RetryArgs {
    /// Resend requests whose outcome is unknown (their recipients may receive it twice):
    /// `--retry-unknown=KEY#N` (request N of KEY, as the plan numbers them), `--retry-unknown=KEY`
    /// (all of KEY's), or `--retry-unknown=all` (every one, said explicitly). A bare flag, an
    /// empty or a blank value is refused. Repeatable.
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "KEY[#N]|all")]
    pub(crate) retry_unknown: Option<Vec<String>>,
    /// Resend to recipients whose delivery Kore.ai reported as FAILURE (`status --refresh`
    /// records it), and only to them: `--retry-failed=KEY`, or `--retry-failed=all` (every
    /// notification, said explicitly). A bare flag, an empty or a blank value is refused. Repeatable.
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "KEY|all")]
    pub(crate) retry_failed: Option<Vec<String>>,
}

impl RetryArgs {
    fn parse(&self) -> Result<ops::plan::Retry> {
        let (unknown, a) =
            crate::plan::Select::parse(self.retry_unknown.as_deref(), "--retry-unknown").map_err(Error::Refused)?;
        let (failed, b) =
            crate::plan::Select::parse(self.retry_failed.as_deref(), "--retry-failed").map_err(Error::Refused)?;
        let said_all =
            [("--retry-unknown", a), ("--retry-failed", b)].into_iter().filter(|x| x.1).map(|x| x.0).collect();
        Ok(ops::plan::Retry { unknown, failed, said_all })
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum StateCommand {
    /// Print where the state lives (relative to the current directory). With --all, every file to
    /// keep together (snapshot, journal, backup, high-water mark), one per line, existing or not.
    Path {
        /// Every file of the state, not only the snapshot.
        #[arg(long)]
        all: bool,
    },
    /// Print the state's lineage, serial and health as `name value` lines (for scripts).
    Info,
    /// Absorb a journal left by an interrupted run into a new snapshot; its requests without a
    /// recorded answer become unknown. Sends nothing.
    Compact,
    /// List notifications in the state.
    List,
    /// Show one notification's state as JSON.
    Show {
        /// The notification key.
        key: String,
    },
    /// Forget a notification (it would be sent again if still in the manifests).
    Rm {
        /// The notification key.
        key: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Settle a request with an unknown outcome. Without --sent/--not-sent, lists the unknown
    /// requests of KEY and their recipients.
    Resolve {
        /// The notification key.
        key: String,
        /// The request: its number as the plan shows it (`3` or `#3`), its batch id, or Kore.ai's
        /// job id. Needed when KEY has more than one unknown request (or pass --all).
        request: Option<String>,
        /// It was delivered: never send this content to its recipients again.
        #[arg(long, conflicts_with = "not_sent")]
        sent: bool,
        /// It was not delivered: the next apply sends to its recipients.
        #[arg(long)]
        not_sent: bool,
        /// Settle every unknown request of KEY the same way.
        #[arg(long, conflicts_with = "request")]
        all: bool,
        /// List recipients in clear (default: masked like j***@example.com).
        #[arg(long)]
        show_recipients: bool,
    },
    /// Lift the halt of a canary rollout (its failure rate went over `maxFailureRate`), recorded
    /// in the state with who and when. Sends nothing: the next apply sends the next wave once
    /// its gate opens.
    Resume {
        /// The notification key.
        key: String,
    },
    /// Copy the whole state into another, empty store: a PostgreSQL database
    /// (postgres://user:${PASSWORD_VAR}@host/db) or a file path inside the repository. Refuses a
    /// store that already holds a state; the source is left as it was.
    Migrate {
        /// The new store: a postgres:// URL (a password only as a ${VAR} reference) or a path.
        #[arg(long, value_name = "URL|PATH")]
        to: String,
    },
}

#[cfg(feature = "emulator")]
#[derive(Args, Debug)]
pub(crate) struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub(crate) listen: std::net::SocketAddr,
    /// Client ID the emulator accepts (JWT claim `appId`).
    #[arg(long, env = "KORE_CLIENT_ID", default_value = "cs-emulator")]
    pub(crate) client_id: String,
    /// Client secret the emulator verifies JWT signatures with.
    #[arg(long, env = "KORE_CLIENT_SECRET", default_value = "emulator-secret", hide_env_values = true)]
    pub(crate) client_secret: String,
    /// Expected v2 message field: message, content, or either.
    #[arg(long, default_value = "message", value_parser = ["message", "content", "either"])]
    pub(crate) v2_field: String,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Share of requests answered 500 (not processed).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub(crate) error_rate: f64,
    /// Share of requests answered 429.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub(crate) rate_limit_rate: f64,
    /// Share of send requests accepted (delivered) and then answered by dropping the connection.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub(crate) drop_rate: f64,
    /// Milliseconds before a job becomes terminal: the delivery delay (alias --delivery-ms).
    #[arg(long, visible_alias = "delivery-ms", default_value_t = 500)]
    pub(crate) job_ms: u64,
    /// Share of identities whose delivery fails (status FAILURE, comment "Failed to deliver the
    /// notification to the channel"), chosen by a hash of the identity: the same identities on
    /// every run, to rehearse canary waves.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub(crate) fail_share: f64,
    /// Rolling per-minute limit on send and status requests together (answered 429 beyond it).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) per_minute: u32,
    /// Rolling per-hour limit on send and status requests together.
    #[arg(long, default_value_t = 18_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) per_hour: u32,
    /// Seed for fault injection, for reproducible runs.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Deterministic faults by send request number (1-based, counting requests that pass
    /// authentication, rate limits and validation), e.g. `2=500,3=drop`. Faults: 500 (not
    /// processed), drop (delivered, connection dropped), html (delivered, 200 with an HTML page),
    /// no-id (delivered, 200 JSON without `_id`), bare-id (delivered, 200 with only `_id`).
    #[arg(long, default_value = "", value_name = "N=FAULT,…")]
    pub(crate) schedule: String,
    /// How v2 `parameters` are applied: message (they fill the main message too, as the API
    /// page's samples show) or custom-only (only a customMessage, as its field table says).
    #[arg(long, default_value = "message", value_parser = ["message", "custom-only"])]
    pub(crate) v2_parameters: String,
}

/// Parses a share between 0 and 1 (for fault injection).
#[cfg(feature = "emulator")]
pub(crate) fn parse_share(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a share; write a number between 0 and 1, e.g. 0.05")),
    }
}

/// Parses a duration as humantime does (`500ms`, `30s`, `5min`, `1h30m`, `2h 15m`); a bare
/// number is seconds.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 30s, 5min or 1h30m"))
}

/// The plan's "now": `KORE_NOTIFY_NOW` when set, else the clock's.
fn now(clock: Clock) -> Result<time::OffsetDateTime> {
    match std::env::var("KORE_NOTIFY_NOW") {
        Ok(s) => crate::rfc3339::parse(&s)
            .ok_or_else(|| Error::Refused(format!("KORE_NOTIFY_NOW=`{s}` is not an RFC 3339 date-time"))),
        Err(_) => Ok(clock.now()),
    }
}

/// The process environment: the one [`Env`](crate::interp::Env) that reads it.
#[derive(Debug)]
pub struct ProcessEnv;

impl crate::interp::Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Settings every command shares, resolved once from the arguments, the environment and the
/// terminal (the only place those are read).
impl Cli {
    /// The shell the flags ask for (colours on standard error when it is a terminal and
    /// `NO_COLOR` is unset, or with `--color always` or `FORCE_COLOR`).
    pub(crate) fn shell(&self) -> crate::shell::Shell {
        crate::shell::Shell {
            quiet: self.quiet,
            verbose: self.verbose,
            err_color: stderr_color(self.color),
            results: if self.events.as_deref() == Some("-") {
                crate::shell::Results::Stderr
            } else {
                crate::shell::Results::Stdout
            },
        }
    }
}

/// Whether standard error gets colours.
fn stderr_color(choice: ColorChoice) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => set("FORCE_COLOR") || (!set("NO_COLOR") && std::io::stderr().is_terminal()),
    }
}

fn global(cli: &Cli) -> Result<Global> {
    let github_actions = std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true");
    crate::safe::set_github_actions(github_actions);
    if let Some(dir) = &cli.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| Error::Refused(format!("-C {}: cannot change to this directory: {e}", dir.display())))?;
    }
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => set("FORCE_COLOR") || (!set("NO_COLOR") && std::io::stdout().is_terminal()),
    };
    let stderr_color = stderr_color(cli.color);
    // The one place the tool decides what time it is; everything below is handed this clock.
    let clock = Clock::System;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let target = match cli.target.as_deref() {
        None => None,
        Some(t) if crate::config::valid_name(t) => Some(t.to_string()),
        Some(t) => {
            return Err(Error::Refused(format!(
                "--target `{}` (or KORE_NOTIFY_TARGET) is not a target name: 1 to 40 lowercase letters, digits, - and _, starting with a letter; leave it unset to plan every target",
                crate::safe::line(t)
            )));
        }
    };
    Ok(Global {
        target,
        config: cli.config.clone(),
        color,
        quiet: cli.quiet,
        verbose: cli.verbose,
        now: now(clock)?,
        started: std::time::Instant::now(),
        clock,
        diag_format: DiagFormat::detect(
            stderr_color,
            github_actions,
            std::env::var_os("GITHUB_WORKSPACE").map(PathBuf::from),
        ),
        env: &ProcessEnv,
        shell: cli.shell(),
        events: match &cli.events {
            Some(path) => Some(std::sync::Arc::new(crate::events::Events::open(path, &command, clock)?)),
            None => None,
        },
        command,
    })
}

impl From<PlanFormat> for ops::plan::Format {
    fn from(f: PlanFormat) -> Self {
        match f {
            PlanFormat::Text => ops::plan::Format::Text,
            PlanFormat::Json => ops::plan::Format::Json,
            PlanFormat::Markdown => ops::plan::Format::Markdown,
        }
    }
}

/// Every key, request, path or list given as a value is checked before the command runs (see
/// [`crate::args`]): empty, blank or padded values and unsafe characters are refused, and keys
/// must be keys.
fn check_values(cli: &Cli) -> Result<()> {
    use crate::args;
    let path = |name: &str, p: &Option<PathBuf>| p.as_ref().map_or(Ok(()), |p| args::plain(name, &p.to_string_lossy()));
    let events = |()| cli.events.as_deref().map_or(Ok(()), |e| args::plain("--events", e));
    let r =
        path("-C", &cli.chdir).and_then(|()| path("--config", &cli.config)).and_then(events).and_then(|()| match &cli
            .command
        {
            Command::Validate { paths, .. } => paths.iter().try_for_each(|p| args::plain("PATH", p)),
            Command::Plan { commit, run_url, repo_url, out, compare_to, .. } => path("--out", out)
                .and_then(|()| path("--compare-to", compare_to))
                .and_then(|()| commit.as_deref().map_or(Ok(()), args::commit))
                .and_then(|()| run_url.as_deref().map_or(Ok(()), args::run_url))
                .and_then(|()| repo_url.as_deref().map_or(Ok(()), args::repo_url)),
            Command::Apply(a) => path("PLANFILE", &a.plan_file)
                .and_then(|()| path("--approvals", &a.approvals))
                .and_then(|()| a.reason.as_deref().map_or(Ok(()), crate::policy::check_reason))
                .and_then(|()| a.skip_promotion.iter().try_for_each(|k| args::key("--skip-promotion", k))),
            Command::Show { plan_file, .. } => path("PLANFILE", &Some(plan_file.clone())),
            Command::TestSend(a) => path("PLANFILE", &a.plan_file)
                .and_then(|()| a.key.iter().try_for_each(|k| args::key("--key", k)))
                .and_then(|()| a.to.iter().try_for_each(|i| args::plain("--to", i)))
                .and_then(|()| match &a.reviewer {
                    Some(l) if !crate::config::valid_login(l) => {
                        Err(format!("--reviewer `{}` is not a GitHub login", crate::safe::line(l)))
                    }
                    _ => Ok(()),
                }),
            Command::Init { dir } => path("DIR", dir),
            Command::Status { keys, .. } => keys.iter().try_for_each(|k| args::key("KEY", k)),
            Command::Report { keys, out, .. } => {
                keys.iter().try_for_each(|k| args::key("--key", k)).and_then(|()| path("--out", out))
            }
            Command::State(
                StateCommand::Show { key } | StateCommand::Rm { key, .. } | StateCommand::Resume { key },
            ) => args::key("KEY", key),
            Command::State(StateCommand::Resolve { key, request, .. }) => {
                args::key("KEY", key).and_then(|()| request.as_deref().map_or(Ok(()), |r| args::request("REQUEST", r)))
            }
            Command::State(StateCommand::Migrate { to }) => args::plain_url("--to", to),
            _ => Ok(()),
        });
    r.map_err(Error::Refused)
}

pub(crate) fn dispatch(cli: Cli) -> Result<Exit> {
    check_values(&cli)?;
    let g = global(&cli)?;
    let r = run(cli, &g);
    if let Some(warning) = g.events.as_ref().and_then(|e| e.failure()) {
        g.shell.errln(format!("warning: {warning}"));
    }
    r
}

fn run(cli: Cli, g: &Global) -> Result<Exit> {
    let shell = g.shell;
    match cli.command {
        Command::Validate { paths, format } => ops::validate::run(g, &paths, matches!(format, OutFormat::Json)),
        Command::Plan {
            format,
            out,
            detailed_exitcode,
            retry,
            max_recipients,
            commit,
            run_url,
            repo_url,
            compare_to,
        } => {
            let review = crate::render::Review {
                commit,
                run_url,
                repo_url,
                max_recipients: max_recipients.filter(|m| *m > 0),
                ..crate::render::Review::default()
            };
            let opts = ops::plan::Options {
                format: format.into(),
                out,
                detailed_exitcode,
                retry: retry.parse()?,
                review,
                compare_to,
            };
            ops::plan::run(g, &opts)
        }
        Command::Apply(a) => ops::apply::run(g, &a.options()?),
        Command::TestSend(a) => ops::test_send::run(
            g,
            &ops::test_send::Options {
                plan_file: a.plan_file,
                to: a.to,
                reviewer: a.reviewer,
                keys: a.key,
                variants: a.variants as usize,
                again: a.again,
            },
        ),
        Command::Status { keys, refresh, parallelism, format } => {
            let (json, markdown) = (matches!(format, PlanFormat::Json), matches!(format, PlanFormat::Markdown));
            let parallelism = parallelism as usize;
            ops::status::run(g, &ops::status::Options { keys, refresh, json, markdown, parallelism })
        }
        Command::Report { keys, format, out, mask } => {
            let format = match format {
                ReportFormat::Html => ops::report::Format::Html,
                ReportFormat::Markdown => ops::report::Format::Markdown,
                ReportFormat::Csv => ops::report::Format::Csv,
                ReportFormat::Json => ops::report::Format::Json,
            };
            ops::report::run(g, &ops::report::Options { keys, format, out, mask }, ops::report::write(g))
        }
        Command::State(s) => ops::state_cmd::run(g, s.into()),
        #[cfg(feature = "emulator")]
        Command::Emulator(e) => emulator(e),
        Command::Init { dir } => ops::init::run(g, dir.as_deref()),
        Command::Show { plan_file, format } => ops::plan::show(g, &plan_file, format.into()),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Through the shell: a reader that goes away is no panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "kore-notify", &mut script);
            g.shell.out(String::from_utf8_lossy(&script));
            Ok(Exit::Ok)
        }
        Command::Version { format } => {
            version(shell, format);
            Ok(Exit::Ok)
        }
        Command::Schema { name } => {
            shell.out(schema(name));
            Ok(Exit::Ok)
        }
    }
}

impl ApplyArgs {
    fn options(self) -> Result<ops::apply::Options> {
        Ok(ops::apply::Options {
            plan_file: self.plan_file,
            auto_approve: self.auto_approve,
            parallelism: self.parallelism as usize,
            max_recipients: self.max_recipients.filter(|m| *m > 0),
            retry: self.retry.parse()?,
            wait: self.wait,
            timeout: self.timeout,
            approvals: self.approvals,
            override_policy: self.override_policy,
            skip_promotion: self.skip_promotion,
            reason: self.reason,
        })
    }
}

impl From<StateCommand> for ops::state_cmd::Command {
    fn from(s: StateCommand) -> Self {
        use ops::state_cmd::Command as C;
        match s {
            StateCommand::List => C::List,
            StateCommand::Path { all } => C::Path { all },
            StateCommand::Info => C::Info,
            StateCommand::Compact => C::Compact,
            StateCommand::Migrate { to } => C::Migrate { to },
            StateCommand::Show { key } => C::Show(key),
            StateCommand::Rm { key, yes } => C::Rm { key, yes },
            StateCommand::Resume { key } => C::Resume(key),
            StateCommand::Resolve { key, request, sent, not_sent, all, show_recipients } => {
                let decision = match (sent, not_sent) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                };
                C::Resolve(ops::state_cmd::Resolve { key, request, decision, all, show_recipients })
            }
        }
    }
}

#[cfg(feature = "emulator")]
fn emulator(e: EmulatorArgs) -> Result<Exit> {
    let opts = crate::emulator::Options {
        listen: e.listen,
        client_id: e.client_id,
        client_secret: e.client_secret,
        v2_field: e.v2_field,
        latency: Duration::from_millis(e.latency_ms),
        error_rate: e.error_rate,
        rate_limit_rate: e.rate_limit_rate,
        drop_rate: e.drop_rate,
        job_duration: Duration::from_millis(e.job_ms),
        fail_share: e.fail_share,
        per_minute: e.per_minute,
        per_hour: e.per_hour,
        seed: e.seed,
        schedule: crate::emulator::parse_schedule(&e.schedule)
            .map_err(|m| Error::Refused(format!("--schedule: {m}")))?,
        v2_parameters: e.v2_parameters,
    };
    let rt = tokio::runtime::Runtime::new().map_err(Error::system("start the async runtime"))?;
    rt.block_on(crate::emulator::serve(opts)).map_err(Error::Emulator)?;
    Ok(Exit::Ok)
}

fn version(shell: crate::shell::Shell, format: OutFormat) {
    match format {
        OutFormat::Text => shell.outln(format!("kore-notify {LONG_VERSION}")),
        OutFormat::Json => shell.outln(
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "commit": env!("KORE_NOTIFY_COMMIT"),
                "target": env!("KORE_NOTIFY_BUILD_TRIPLE"),
            })
            .to_string(),
        ),
    }
}
