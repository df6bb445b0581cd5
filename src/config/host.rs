//! Which hosts may be spoken to, and how: https, or plain http to loopback only.

/// Whether a parsed URL host is loopback (the only place plain http is allowed): an IP literal in
/// 127.0.0.0/8 or `::1`, or exactly `localhost`. Parsed, never matched as text:
/// `127.evil.example` is a domain name, not a loopback address.
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

pub(super) fn check_host(h: &str) -> std::result::Result<(), String> {
    let url = reqwest::Url::parse(h).map_err(|e| format!("`{h}` is not a valid URL ({e})"))?;
    let host = url.host().ok_or_else(|| format!("`{h}` has no host"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err(format!("plain http is refused for `{host}`: credentials and messages would travel unencrypted")),
        s => Err(format!("unsupported URL scheme `{s}`")),
    }?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the host URL carries a user name or password; credentials belong in clientId/clientSecret".into());
    }
    if url.path() != "/" && !url.path().is_empty() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{h}` has a path, query or fragment; give only the scheme and host (and port)"));
    }
    Ok(())
}
