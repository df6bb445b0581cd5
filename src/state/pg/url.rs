//! PostgreSQL URLs: where a password may come from, how it is hidden, and how TLS is chosen.
//!
//! A URL written in `kore-notify.yaml` (or given to `state migrate --to`) may carry a password only
//! as a reference, `postgres://user:${VAR}@host/db`, resolved from the environment when the store is
//! opened; a literal password is refused like a literal client secret. `KORE_NOTIFY_STATE_URL` is
//! itself a secret and may carry one. The password never appears in `Debug`, errors or output:
//! [`PgSpec::shown`] is the URL with the password replaced by `***`.
//!
//! TLS goes through rustls and always verifies the server's certificate (the platform's roots, or
//! the file named by `sslrootcert`); `sslmode` is honoured as follows. `disable`: no TLS, allowed
//! only to loopback and Unix sockets. `allow`/`prefer` (the default): no TLS to loopback and Unix
//! sockets (like plain http to the emulator), TLS anywhere else — where they mean `require`.
//! `require`, `verify-ca` and `verify-full`: TLS, verified, or no connection.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::interp::Env;
use crate::state::StateError;

/// Where a PostgreSQL state lives, as written (password as a reference, or from a secret variable).
#[derive(Clone)]
pub struct PgSpec {
    template: String,
    /// Where the URL came from, for errors: `state` (the config), `--to`, `KORE_NOTIFY_STATE_URL`.
    origin: String,
    /// The password reference (`VAR` of `${VAR}`), when there is one.
    password_var: Option<String>,
}

impl std::fmt::Debug for PgSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSpec").field("url", &self.shown()).field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// Whether a `state:` value names a PostgreSQL database rather than a file.
pub(crate) fn is_postgres_url(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The URL split around its password: (before, password, after). Split exactly as the client
/// library reads it: the user part ends at the first `@` after `://`, wherever that is, so a
/// password holding `/`, `?` or `#` (base64 passwords do) is still the password.
fn split_password(url: &str) -> Option<(&str, &str, &str)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let at = rest.find('@')?;
    let colon = rest[..at].find(':')?;
    Some((&url[..=(start + colon)], &rest[colon + 1..at], &rest[at..]))
}

/// Where the query of a URL starts (after its user part, which may hold a `?`).
fn query_start(url: &str) -> Option<usize> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let after_user = url[start..].find('@').map_or(start, |i| start + i + 1);
    url[after_user..].find('?').map(|i| after_user + i)
}

/// The query parameter names the client library reads, decoded as it decodes them.
fn decoded(k: &str) -> String {
    url::form_urlencoded::parse(format!("{k}=").as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default()
}

/// A query value decoded as the client library decodes it.
fn decoded_value(v: &str) -> String {
    url::form_urlencoded::parse(format!("v={v}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// Whether a query parameter carries a password: `password=`, or `options=` that mentions one
/// (`options=-c password=…` is sent to the server as it is, and shown wherever the URL is).
fn is_secret_param(k: &str, v: &str) -> bool {
    match decoded(k).as_str() {
        "password" => true,
        "options" => decoded_value(v).to_ascii_lowercase().contains("password"),
        _ => false,
    }
}

/// The query's `(name, value)` pairs as written (not decoded).
fn query_pairs(url: &str) -> Vec<(&str, &str)> {
    let Some(q) = query_start(url) else { return Vec::new() };
    url[q + 1..].split('&').map(|pair| pair.split_once('=').unwrap_or((pair, ""))).collect()
}

/// The values of the parameters that carry a password replaced by `***`.
fn mask_query_password(url: &str) -> String {
    let Some(q) = query_start(url) else { return url.to_string() };
    let pairs: Vec<String> = url[q + 1..]
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if is_secret_param(k, v) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{}?{}", &url[..q], pairs.join("&"))
}

/// Whether the URL's query carries a password.
fn has_query_password(url: &str) -> bool {
    query_pairs(url).iter().any(|(k, v)| is_secret_param(k, v))
}

/// Whether an `@` follows the first one in the host part: the client reads the user part up to the
/// first `@`, so an `@` in a password (or a user name) that is not written `%40` leaves the rest of
/// it in the host, where it would be shown.
fn stray_at(url: &str) -> bool {
    let start = url.find("://").map_or(0, |i| i + 3);
    let Some(at) = url[start..].find('@') else { return false };
    let host = &url[start + at + 1..];
    host[..host.find(['/', '?']).unwrap_or(host.len())].contains('@')
}

impl PgSpec {
    /// A URL written where secrets must not be (the config file, a command line): a password only
    /// as `${VAR}`.
    pub(crate) fn written(raw: &str, origin: &str) -> std::result::Result<PgSpec, String> {
        let raw = raw.trim();
        let password_var = match split_password(raw) {
            Some((_, "", _)) => None,
            Some((_, pw, _)) => match crate::interp::sole_reference(pw) {
                Some(var) => Some(var.to_string()),
                None => {
                    return Err("a literal password is not allowed here: write it as a reference, postgres://user:${KORE_NOTIFY_PG_PASSWORD}@host/db, or put the whole URL in the KORE_NOTIFY_STATE_URL secret".into());
                }
            },
            None => None,
        };
        if has_query_password(raw) {
            return Err("a password is not allowed in the URL's query (`password=`, or `options=` naming one): write it as a reference, postgres://user:${KORE_NOTIFY_PG_PASSWORD}@host/db, or put the whole URL in the KORE_NOTIFY_STATE_URL secret".into());
        }
        let spec = PgSpec { template: raw.to_string(), origin: origin.into(), password_var };
        if spec.without_password().contains("${") {
            return Err("only the password may be a ${VAR} reference in a PostgreSQL URL".into());
        }
        spec.check_shape()?;
        Ok(spec)
    }

    /// A URL from a secret environment variable: taken as it is.
    pub fn secret(raw: &str, origin: &str) -> std::result::Result<PgSpec, String> {
        let spec = PgSpec { template: raw.trim().to_string(), origin: origin.into(), password_var: None };
        spec.check_shape()?;
        Ok(spec)
    }

    fn check_shape(&self) -> std::result::Result<(), String> {
        if !is_postgres_url(&self.template) {
            return Err("expected a postgres:// or postgresql:// URL".into());
        }
        if stray_at(&self.template) {
            return Err(
                "more than one `@` before the host: write an `@` in the user name or the password as %40".into()
            );
        }
        let (params, _) = split_params(&self.without_password())?;
        tokio_postgres::Config::from_str_checked(&params).map(|_| ())
    }

    pub(crate) fn without_password(&self) -> String {
        let url = match split_password(&self.template) {
            Some((a, _, b)) => format!("{a}***{b}"),
            None => self.template.clone(),
        };
        mask_query_password(&url)
    }

    /// The password as written in the URL (user part or `password=`), to take out of any message
    /// that might echo it.
    fn written_passwords(&self) -> Vec<String> {
        let mut out: Vec<String> = split_password(&self.template).map(|(_, p, _)| p.to_string()).into_iter().collect();
        out.extend(
            query_pairs(&self.template).into_iter().filter(|(k, v)| is_secret_param(k, v)).map(|(_, v)| v.into()),
        );
        out.retain(|p| !p.is_empty() && !p.starts_with("${"));
        let decoded: Vec<String> = out.iter().map(|p| decoded_value(p)).collect();
        out.extend(decoded.into_iter().filter(|p| !p.is_empty()));
        out
    }

    /// The URL as it may be shown: the password replaced by `***`, control characters escaped.
    pub(crate) fn shown(&self) -> String {
        crate::safe::line(&self.without_password()).into_owned()
    }

    /// The connection settings, the password read from the environment now.
    pub(super) fn resolve(&self, env: &dyn Env) -> Result<Conn> {
        let url = match (&self.password_var, split_password(&self.template)) {
            (Some(var), Some((a, _, b))) => {
                let pw = env.get(var).filter(|v| !v.is_empty()).ok_or_else(|| Error::MissingEnv {
                    name: var.clone(),
                    field: format!("the password of the state URL ({})", self.origin),
                })?;
                format!("{a}{}{b}", percent_encode(&pw))
            }
            _ => self.template.clone(),
        };
        let secrets = self.written_passwords();
        let bad = |m: String| {
            let m = secrets.iter().fold(m, |m, p| m.replace(p.as_str(), "***"));
            Error::Refused(format!("state URL {} ({}): {m}", self.shown(), self.origin))
        };
        let (stripped, ssl) = split_params(&url).map_err(bad)?;
        let mut config = tokio_postgres::Config::from_str_checked(&stripped).map_err(bad)?;
        let loopback = only_loopback(&config);
        let tls = tls_mode(ssl.mode.as_deref(), loopback).map_err(bad)?;
        if config.get_application_name().is_none() {
            config.application_name("kore-notify");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives_idle(Duration::from_secs(30));
        Ok(Conn { config, tls, root_cert: ssl.root_cert.map(PathBuf::from), shown: self.shown() })
    }

    /// The variable the password comes from, when the URL names one.
    pub(crate) fn password_var(&self) -> Option<&str> {
        self.password_var.as_deref()
    }
}

/// Whether every address the client may connect to is on this machine: each host (a loopback IP
/// literal, `localhost` or a Unix socket) and each `hostaddr` (which, when given, is where the
/// connection really goes). No host at all is not loopback: the client picks its own default.
fn only_loopback(config: &tokio_postgres::Config) -> bool {
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    let host_ok = |h: &tokio_postgres::config::Host| match h {
        tokio_postgres::config::Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    };
    (!hosts.is_empty() || !addrs.is_empty())
        && hosts.iter().all(host_ok)
        && addrs.iter().all(std::net::IpAddr::is_loopback)
}

/// Every byte but the unreserved ones as `%XX`, so any password fits in the URL's user part.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

trait FromStrChecked: Sized {
    fn from_str_checked(s: &str) -> std::result::Result<Self, String>;
}

impl FromStrChecked for tokio_postgres::Config {
    fn from_str_checked(s: &str) -> std::result::Result<Self, String> {
        s.parse::<tokio_postgres::Config>().map_err(|e| crate::safe::line(&e.to_string()).into_owned())
    }
}

/// TLS settings taken out of the URL (the client library knows only some of libpq's modes).
#[derive(Default)]
struct SslParams {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// The URL without `sslmode` and `sslrootcert`, and those two.
fn split_params(url: &str) -> std::result::Result<(String, SslParams), String> {
    // The query starts after the user part: a `?` in a password is not where it starts.
    let Some(q) = query_start(url) else { return Ok((url.to_string(), SslParams::default())) };
    let (base, query) = (&url[..q], &url[q + 1..]);
    let mut ssl = SslParams::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || decoded_value(v);
        // Names as the client library decodes them: `%73slmode` is `sslmode` there too.
        match decoded(k).as_str() {
            "sslmode" => ssl.mode = Some(value()),
            "sslrootcert" => ssl.root_cert = Some(value()),
            name @ ("sslcert" | "sslkey" | "sslpassword" | "sslcrl") => {
                return Err(format!("`{name}` is not supported (client certificates); use a password"));
            }
            _ => kept.push(pair),
        }
    }
    Ok((if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) }, ssl))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tls {
    /// Plain TCP (loopback only).
    Off,
    /// TLS with a verified certificate, or no connection.
    Require,
}

/// `sslmode` → what to do, given whether every host is loopback (or a Unix socket).
pub(super) fn tls_mode(mode: Option<&str>, loopback: bool) -> std::result::Result<Tls, String> {
    match mode {
        None | Some("allow" | "prefer") => Ok(if loopback { Tls::Off } else { Tls::Require }),
        Some("disable") if loopback => Ok(Tls::Off),
        Some("disable") => Err("sslmode=disable is refused for a remote server: the password and the state would travel unencrypted; use sslmode=require".into()),
        Some("require" | "verify-ca" | "verify-full") => Ok(Tls::Require),
        Some(other) => Err(format!(
            "unknown sslmode `{}`: use disable (loopback only), prefer, require, verify-ca or verify-full",
            crate::safe::line(other)
        )),
    }
}

/// Resolved connection settings.
pub(super) struct Conn {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: Tls,
    pub(super) root_cert: Option<PathBuf>,
    pub(super) shown: String,
}

impl Conn {
    /// The TLS configuration to connect with, `None` for plain TCP.
    pub(super) fn tls_config(&self) -> std::result::Result<Option<rustls::ClientConfig>, StateError> {
        if self.tls == Tls::Off { Ok(None) } else { self.rustls().map(Some) }
    }

    /// The rustls configuration: the platform's roots, or only the certificates of `sslrootcert`.
    pub(super) fn rustls(&self) -> std::result::Result<rustls::ClientConfig, StateError> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(StateError::Tls)?;
        let config = match &self.root_cert {
            Some(path) => {
                let bad = |e: Box<dyn std::error::Error + Send + Sync>| StateError::RootCert {
                    path: path.clone(),
                    source: e,
                };
                let pem = crate::files::read_named(path, 1024 * 1024).map_err(|e| bad(e.into()))?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                    let cert: rustls::pki_types::CertificateDer = cert.map_err(|e| bad(e.into()))?;
                    roots.add(cert).map_err(|e| bad(e.into()))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder.with_platform_verifier().map_err(StateError::Tls)?.with_no_client_auth()
            }
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_only_as_references() {
        assert!(PgSpec::written("postgres://kn:${PGPW}@db.example.com/kn", "state").is_ok());
        assert!(PgSpec::written("postgres://kn@db.example.com/kn", "state").is_ok());
        assert!(PgSpec::written("postgresql://db.example.com/kn", "state").is_ok());
        let e = PgSpec::written("postgres://kn:hunter2@db.example.com/kn", "state").unwrap_err();
        assert!(e.contains("literal password") && !e.contains("hunter2"), "{e}");
        assert!(PgSpec::written("postgres://kn:${PW}@${HOST}/kn", "state").is_err());
        assert!(PgSpec::written("mysql://db/kn", "state").is_err());
        let s = PgSpec::secret("postgres://kn:hunter2@db.example.com:5433/kn?sslmode=require", "env").unwrap();
        assert_eq!(s.shown(), "postgres://kn:***@db.example.com:5433/kn?sslmode=require");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    /// Every character a password may hold, at every place in it: `shown` never has it, a written
    /// URL refuses it, and the parts around it are kept.
    #[test]
    fn passwords_are_found_where_the_client_reads_them() {
        let specials = ["/", "?", "#", ":", "&", "=", "%2F", "+", " ", "[", "]", "!", "$", "'", "\\", "~", "%40"];
        for sp in specials {
            for pw in [format!("{sp}Sec9"), format!("Sec{sp}9"), format!("Sec9{sp}"), format!("a{sp}{sp}b/c?d")] {
                for tail in ["", "/kn", "/kn?sslmode=require", "?sslmode=require", ":5433/kn"] {
                    let url = format!("postgres://kn:{pw}@db.example.com{tail}");
                    let s = PgSpec::secret(&url, "env");
                    if let Ok(s) = &s {
                        let shown = s.shown();
                        assert!(!shown.contains("Sec"), "{url} shown as {shown}");
                        assert!(shown.starts_with("postgres://kn:***@db.example.com"), "{url} shown as {shown}");
                        assert!(!format!("{s:?}").contains("Sec"));
                    }
                    let e = PgSpec::written(&url, "state").expect_err(&url);
                    assert!(!e.contains("Sec"), "{url}: {e}");
                }
            }
        }
    }

    struct NoEnv;
    impl Env for NoEnv {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }

    /// A secret URL whose password holds any delimiter (`@` included) at any place: no part of the
    /// password in what is shown or in any error, and the TLS settings after it are read wherever
    /// the password's own `?` is.
    #[test]
    fn secret_urls_keep_their_password_and_their_settings() {
        let specials = ["@", "/", "?", "#", ":", "&", "=", "%40", "%3F", "+", " ", "!", "$", "'", "\\"];
        let tails = [
            ("db.example.com/kn?sslmode=disable", Some("sslmode=disable is refused")),
            ("db.example.com/kn?sslmode=bogus", Some("unknown sslmode")),
            ("127.0.0.1/kn?sslmode=require&sslrootcert=%2Fca.pem", None),
            ("db.example.com:port/kn", Some("")),
            ("db.example.com/kn?application_name=x", None),
        ];
        for sp in specials {
            for pw in [format!("{sp}Sec-Pw9"), format!("Sec{sp}Pw9"), format!("Sec-Pw9{sp}"), format!("Sec{sp}{sp}Pw9")]
            {
                for (tail, refused) in tails {
                    let url = format!("postgres://kn:{pw}@{tail}");
                    let clean = |what: &str| {
                        assert!(!what.contains("Sec") && !what.contains("Pw9"), "{url}: {what}");
                    };
                    let resolved = match PgSpec::secret(&url, "env") {
                        Err(e) => {
                            clean(&e);
                            continue;
                        }
                        Ok(s) => {
                            clean(&s.shown());
                            clean(&format!("{s:?}"));
                            s.resolve(&NoEnv)
                        }
                    };
                    match (resolved, refused) {
                        (Ok(c), None) => {
                            clean(&c.shown);
                            if tail.contains("sslrootcert") {
                                assert_eq!(c.root_cert, Some(PathBuf::from("/ca.pem")), "{url}");
                                assert_eq!(c.tls, Tls::Require, "{url}");
                            }
                        }
                        (Err(e), Some(why)) => {
                            clean(&e.to_string());
                            assert!(e.to_string().contains(why), "{url}: {e}");
                        }
                        (Ok(_), Some(why)) => panic!("{url}: accepted, expected `{why}`"),
                        (Err(e), None) => panic!("{url}: {e}"),
                    }
                    clean(&PgSpec::written(&url, "state").expect_err(&url));
                }
            }
        }
        // An `@` in a user name (as some hosted servers spell them) must be written %40 too.
        for url in ["postgres://kn@srv:Sec-Pw9@db.example.com/kn", "postgres://kn@Sec-Pw9@db.example.com/kn"] {
            let e = PgSpec::secret(url, "env").expect_err(url);
            assert!(e.contains("%40") && !e.contains("Sec"), "{e}");
        }
        assert!(PgSpec::secret("postgres://kn%40srv:Sec%40Pw9@db.example.com/kn?application_name=a@b", "env").is_ok());
    }

    #[test]
    fn query_passwords_are_masked_and_refused_in_files() {
        for url in [
            "postgres://kn@db.example.com/kn?password=Sec9",
            "postgres://kn@db.example.com/kn?sslmode=require&password=Sec9&application_name=x",
            "postgres://kn@db.example.com/kn?pass%77ord=Sec9",
            "postgres://kn@db.example.com/kn?password=Sec9/x?y",
            "postgres://kn@db.example.com/kn?password=x&password=Sec9",
            "postgres://kn@db.example.com/kn?options=-c%20password%3DSec9",
            "postgres://kn@db.example.com/kn?options=-c+PASSWORD=Sec9&application_name=x",
            "postgres://kn@db.example.com/kn?%6Fptions=-cpassword%3DSec9",
        ] {
            let s = PgSpec::secret(url, "env").expect(url);
            assert!(!s.shown().contains("Sec9"), "{url}: {}", s.shown());
            let e = PgSpec::written(url, "state").expect_err(url);
            assert!(e.contains("password") && !e.contains("Sec9"), "{e}");
        }
    }

    #[test]
    fn loopback_means_every_address_is_local() {
        let loopback = |u: &str| only_loopback(&u.parse::<tokio_postgres::Config>().expect(u));
        assert!(loopback("postgres://u@127.0.0.1/db"));
        assert!(loopback("postgres://u@localhost:5433/db"));
        assert!(loopback("postgres://u@[::1]/db"));
        assert!(loopback("postgres://u@localhost/db?hostaddr=127.0.0.2"));
        assert!(!loopback("postgres://u@127.0.0.1/db?hostaddr=10.1.2.3"));
        assert!(!loopback("postgres://u@localhost/db?hostaddr=192.168.1.4"));
        assert!(!loopback("postgres://u@/db"));
        assert!(!loopback("postgres://u@127.0.0.1,db.example.com/db"));
        assert!(!loopback("postgres://u@127.evil.example/db"));
        assert!(loopback("postgres://u@/db?hostaddr=127.0.0.1"));
    }

    #[test]
    fn sslmode_table() {
        use Tls::*;
        let cases: &[(Option<&str>, bool, Option<Tls>)] = &[
            (None, true, Some(Off)),
            (None, false, Some(Require)),
            (Some("prefer"), false, Some(Require)),
            (Some("prefer"), true, Some(Off)),
            (Some("allow"), true, Some(Off)),
            (Some("disable"), true, Some(Off)),
            (Some("disable"), false, None),
            (Some("require"), true, Some(Require)),
            (Some("verify-full"), false, Some(Require)),
            (Some("verify-ca"), false, Some(Require)),
            (Some("bogus"), true, None),
        ];
        for (mode, loopback, want) in cases {
            assert_eq!(tls_mode(*mode, *loopback).ok(), *want, "{mode:?} loopback={loopback}");
        }
    }

    #[test]
    fn ssl_params_are_taken_out() {
        let (u, p) =
            split_params("postgres://h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem").unwrap();
        assert_eq!(u, "postgres://h/db?application_name=x");
        assert_eq!(p.mode.as_deref(), Some("verify-full"));
        assert_eq!(p.root_cert.as_deref(), Some("/ca.pem"));
        assert!(split_params("postgres://h/db?sslkey=/k").is_err());
        assert!(split_params("postgres://h/db?%73slkey=/k").is_err());
        let (u, p) = split_params("postgres://kn:a?b@h/db?%73slmode=require&ssl%72ootcert=%2Fca.pem").unwrap();
        assert_eq!(u, "postgres://kn:a?b@h/db");
        assert_eq!((p.mode.as_deref(), p.root_cert.as_deref()), (Some("require"), Some("/ca.pem")));
    }
}
