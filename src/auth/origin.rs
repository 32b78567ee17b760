//! The Origin allowlist for browser requests (cross-site WebSocket hijacking and CSRF). Exact
//! match against `--cors-origins` (the same list CORS uses), plus the hub's own origin when it
//! is reached on a loopback name, so the bundled test page works in development. `null`,
//! wildcards and look-alikes never match: the comparison is whole-string.

use anyhow::bail;

pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// Validate the configured origins: each is `scheme://host[:port]`, nothing more.
    pub fn new(origins: &[String]) -> anyhow::Result<Self> {
        let mut allowed = Vec::new();
        for o in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            if !is_serialized_origin(o) {
                bail!("--cors-origins: `{o}` is not an origin (scheme://host[:port], no path, no wildcard, not `null`)");
            }
            allowed.push(o.to_owned());
        }
        Ok(OriginPolicy { allowed })
    }

    /// Whether a request carrying `Origin: origin` may proceed. `host` is its Host header.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        if self.allowed.iter().any(|a| a == origin) {
            return true;
        }
        // Same origin is only trusted on loopback names: there a DNS-rebinding page cannot
        // pose as the hub (its Host would be the attacker's name, not a loopback one).
        match host {
            Some(h) if is_loopback_host(h) => {
                origin == format!("http://{h}") || origin == format!("https://{h}")
            }
            _ => false,
        }
    }
}

/// `http(s)://host[:port]` in the form browsers send: lowercase scheme and host, no path,
/// no query, no userinfo, no trailing slash.
fn is_serialized_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', '*', ' '])
        && !rest.bytes().any(|b| b.is_ascii_uppercase())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((ip, rest)) if rest.is_empty() || is_port(rest) => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if is_port(&format!(":{port}")) => h,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OriginPolicy {
        OriginPolicy::new(&["https://app.example".into()]).expect("valid")
    }

    #[test]
    fn exact_match_only() {
        let p = policy();
        assert!(p.allows("https://app.example", Some("hub.example")));
        for o in [
            "null",
            "https://app.example.evil.com",
            "https://evil-app.example",
            "http://app.example",
            "https://app.example:443",
            "https://app.example/",
            "HTTPS://APP.EXAMPLE",
            "",
        ] {
            assert!(!p.allows(o, Some("hub.example")), "{o} allowed");
        }
    }

    #[test]
    fn same_origin_only_on_loopback_hosts() {
        let p = policy();
        assert!(p.allows("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(p.allows("http://localhost:8080", Some("localhost:8080")));
        assert!(p.allows("http://[::1]:8080", Some("[::1]:8080")));
        assert!(!p.allows("http://127.0.0.1:9999", Some("127.0.0.1:8080")));
        assert!(!p.allows("http://attacker.example", Some("attacker.example")));
        assert!(!p.allows(
            "http://127.0.0.1:8080.evil.com",
            Some("127.0.0.1:8080.evil.com")
        ));
        assert!(!p.allows("http://127.0.0.1:8080", None));
    }

    #[test]
    fn bad_configured_origins_are_refused() {
        for o in [
            "*",
            "null",
            "https://app.example/",
            "app.example",
            "https://*.example",
            "https://App.example",
        ] {
            assert!(OriginPolicy::new(&[o.to_owned()]).is_err(), "{o} accepted");
        }
    }
}
