//! Webhook target URLs. MLflow's server POSTs every matching event to a webhook's `url`, from
//! inside the deployment: a webhook a tenant may set is a server-side request it can aim
//! anywhere the server reaches (the metadata service, the database, MLflow itself, other
//! tenants' services). So a URL must be `https` (or `http` to a listed host), its host must be
//! on the operator's allow-list (`webhook_allowed_hosts`), and loopback, link-local, private,
//! unspecified and multicast addresses, `localhost`, and MLflow's own host are refused unless
//! the list names them exactly (an exact entry may also fix the port, so listing a receiver
//! next to MLflow on one host does not open MLflow's own port). Hostnames are judged by name:
//! the gateway cannot see what MLflow's resolver will answer, which is why only listed names
//! pass.

use crate::error::{GatewayError, Reason};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of `webhook_allowed_hosts`: an exact host (name or IP, optionally with the only
/// port it admits: `hooks.example.com:8443`, `[::1]:9000`), a `*.` domain suffix, or an IP
/// network in CIDR form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    Exact(String, Option<u16>),
    Suffix(String),
    Network(IpAddr, u8),
}

impl AllowedHost {
    /// Parses one entry; `Err` says why it is not one.
    pub fn parse(raw: &str) -> Result<AllowedHost, String> {
        let raw = raw.trim().to_ascii_lowercase();
        if let Some(domain) = raw.strip_prefix("*.") {
            if domain.is_empty() || !domain.contains('.') || !valid_name(domain) {
                return Err(format!("`{raw}` is not a domain suffix (`*.example.com`)"));
            }
            return Ok(AllowedHost::Suffix(domain.to_string()));
        }
        if let Some((ip, bits)) = raw.split_once('/') {
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("`{raw}` is not a CIDR network"))?;
            let bits: u8 = bits
                .parse()
                .map_err(|_| format!("`{raw}` is not a CIDR network"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(format!("`{raw}`: prefix longer than {max} bits"));
            }
            return Ok(AllowedHost::Network(ip, bits));
        }
        let not_one = || format!("`{raw}` is not a host, a `*.` domain suffix or a CIDR network");
        let (host, port) = split_port(&raw).ok_or_else(not_one)?;
        if host.parse::<IpAddr>().is_ok() || valid_name(&host) {
            return Ok(AllowedHost::Exact(host, port));
        }
        Err(not_one())
    }

    fn admits(&self, host: &Host, port: u16) -> bool {
        match (self, host) {
            (AllowedHost::Exact(e, p), Host::Name(n)) => e == n && p.is_none_or(|p| p == port),
            (AllowedHost::Exact(e, p), Host::Ip(ip)) => {
                e.parse::<IpAddr>().ok() == Some(*ip) && p.is_none_or(|p| p == port)
            }
            (AllowedHost::Suffix(d), Host::Name(n)) => {
                n.len() > d.len() + 1
                    && n.ends_with(d.as_str())
                    && n[..n.len() - d.len()].ends_with('.')
            }
            (AllowedHost::Network(net, bits), Host::Ip(ip)) => in_network(*ip, *net, *bits),
            _ => false,
        }
    }

    /// Whether the entry names this host exactly (the only way a refused kind of address
    /// passes).
    fn names_exactly(&self, host: &Host, port: u16) -> bool {
        matches!(self, AllowedHost::Exact(..)) && self.admits(host, port)
            || matches!(self, AllowedHost::Network(_, b) if (*b == 32 || *b == 128) && self.admits(host, port))
    }
}

/// `host`, `host:port` or `[v6]:port` (lowercase) as host and port; `None` if malformed.
fn split_port(raw: &str) -> Option<(String, Option<u16>)> {
    let port = |p: &str| -> Option<u16> {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
            .filter(|p| *p > 0)
    };
    if let Some(v6) = raw.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Some((inside.to_string(), None)),
            Some(p) => Some((inside.to_string(), Some(port(p)?))),
            None => None,
        };
    }
    if raw.matches(':').count() > 1 {
        // A bare IPv6 address: no port.
        return Some((raw.to_string(), None));
    }
    match raw.split_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(port(p)?))),
        None => Some((raw.to_string(), None)),
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Addresses a server-side request must not reach by default.
fn internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || in_network(ip, IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)), 96)
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT 100.64/10
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240
}

fn refused(msg: String) -> GatewayError {
    GatewayError::new(Reason::WebhookUrlRefused, msg)
}

/// Checks a webhook's target URL against the allow-list; `mlflow_host` is MLflow's own host
/// (from `upstream_origin`), never a target unless listed exactly.
pub fn check_url(
    url: &str,
    allowed: &[AllowedHost],
    mlflow_host: &str,
) -> Result<(), GatewayError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| refused("webhook `url` must be an absolute http(s) URL".into()))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(refused("webhook `url` must use https (or http)".into()));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@')
        || authority.contains('\\')
        || url.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(refused(
            "webhook `url` must not carry credentials, backslashes or spaces".into(),
        ));
    }
    let (host_part, port) = split_port(&authority.to_ascii_lowercase())
        .filter(|(h, _)| !h.contains(':') || authority.starts_with('['))
        .ok_or_else(|| refused("webhook `url` has a malformed host or port".into()))?;
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    let host = match host_part.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) if valid_name(host_part.trim_end_matches('.')) => {
            Host::Name(host_part.trim_end_matches('.').to_string())
        }
        Err(_) => {
            return Err(refused(format!(
                "webhook `url` host `{host_part}` is not a DNS name or an IP address"
            )))
        }
    };
    if allowed.is_empty() {
        return Err(refused(
            "webhooks are off: the operator has not listed any target host (webhook_allowed_hosts)"
                .into(),
        ));
    }
    let exact = allowed.iter().any(|a| a.names_exactly(&host, port));
    let internal = match &host {
        Host::Ip(ip) => internal_ip(*ip),
        Host::Name(n) => {
            n == "localhost" || n.ends_with(".localhost") || *n == mlflow_host.to_ascii_lowercase()
        }
    };
    if internal && !exact {
        return Err(refused(format!(
            "webhook `url` host `{host_part}` is loopback, link-local, private or MLflow's own: refused unless webhook_allowed_hosts names it exactly"
        )));
    }
    if scheme == "http" && !exact {
        return Err(refused(
            "webhook `url` must use https (http only to a host webhook_allowed_hosts names exactly)"
                .into(),
        ));
    }
    if !allowed.iter().any(|a| a.admits(&host, port)) {
        return Err(refused(format!(
            "webhook `url` host `{host_part}` is not in webhook_allowed_hosts"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str]) -> Vec<AllowedHost> {
        list.iter()
            .map(|e| AllowedHost::parse(e).unwrap())
            .collect()
    }

    #[test]
    fn only_listed_public_https_hosts_pass() {
        let a = allow(&["hooks.example.com", "*.ci.example.org", "203.0.113.0/24"]);
        for ok in [
            "https://hooks.example.com/mlflow",
            "https://HOOKS.example.com:8443/x?y=1",
            "https://a.ci.example.org/h",
        ] {
            assert!(check_url(ok, &a, "mlflow.internal").is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.example.net/x",
            "https://ci.example.org/x",
            "http://a.ci.example.org/x",
            "ftp://hooks.example.com/x",
            "https://user:pw@hooks.example.com/x",
            "https://hooks.example.com\\@evil/x",
            "hooks.example.com/x",
            "https://203.0.113.5/x", // documentation range: internal by default, listed by network only
        ] {
            let e = check_url(bad, &a, "mlflow.internal").unwrap_err();
            assert_eq!(e.reason, Reason::WebhookUrlRefused, "{bad}");
        }
    }

    #[test]
    fn internal_addresses_need_an_exact_entry() {
        let any = allow(&["*.example.com", "10.0.0.0/8", "0.0.0.0/0"]);
        for bad in [
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://a.localhost/x",
            "https://169.254.169.254/latest/meta-data",
            "https://10.1.2.3/x",
            "https://[::1]/x",
            "https://[fe80::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://0.0.0.0/x",
            "https://100.64.0.1/x",
            "https://mlflow.example.com/x",
        ] {
            let e = check_url(bad, &any, "mlflow.example.com").unwrap_err();
            assert_eq!(e.reason, Reason::WebhookUrlRefused, "{bad}");
        }
        let exact = allow(&["127.0.0.1", "10.1.2.3/32"]);
        assert!(check_url("http://127.0.0.1:9000/hook", &exact, "mlflow").is_ok());
        // A port on the entry admits that port alone (MLflow beside the receiver stays out).
        let port = allow(&["127.0.0.1:9000", "[::1]:9001", "hooks.example.com:8443"]);
        assert!(check_url("http://127.0.0.1:9000/hook", &port, "127.0.0.1").is_ok());
        assert!(check_url("http://[::1]:9001/hook", &port, "127.0.0.1").is_ok());
        assert!(check_url("https://hooks.example.com:8443/h", &port, "m").is_ok());
        for bad in [
            "http://127.0.0.1:5000/api/2.0/mlflow/experiments/search",
            "http://127.0.0.1/hook",
            "https://hooks.example.com/h",
            "http://127.0.0.1:9000:1/h",
            "http://[::1/h",
        ] {
            assert!(check_url(bad, &port, "127.0.0.1").is_err(), "{bad}");
        }
        assert!(check_url("https://10.1.2.3/hook", &exact, "mlflow").is_ok());
        // Nothing listed: webhooks are off.
        assert!(check_url("https://hooks.example.com/x", &[], "m").is_err());
    }

    #[test]
    fn entries_parse_or_say_why_not() {
        assert_eq!(
            AllowedHost::parse("*.Example.com"),
            Ok(AllowedHost::Suffix("example.com".into()))
        );
        assert_eq!(
            AllowedHost::parse("127.0.0.1:9000"),
            Ok(AllowedHost::Exact("127.0.0.1".into(), Some(9000)))
        );
        assert_eq!(
            AllowedHost::parse("::1"),
            Ok(AllowedHost::Exact("::1".into(), None))
        );
        for bad in [
            "*.",
            "*.com",
            "10.0.0.0/33",
            "a b",
            "http://x",
            "h:0",
            "h:x",
            "[::1",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
