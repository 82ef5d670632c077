//! The guard on requests to addresses that tenants choose (webhook endpoints; media fetched from
//! a URL later): https only, and never to this machine, the private network behind it, or any
//! address that is not a public unicast one.
//!
//! The check runs where the connection is made: the HTTP client resolves names through
//! [`GuardedResolver`], which drops every refused address before the connector sees the list,
//! so the request connects only to an address that was checked (no second lookup an attacker's
//! DNS could answer differently). A URL whose host is an address literal never reaches a
//! resolver, so [`check_url`] refuses those before the request. Redirects are not followed.
//!
//! [`OutboundArgs::allow_private`] (`AUTOSOCIAL_OUTBOUND_ALLOW_PRIVATE`) lifts both rules for
//! tests and the demo, whose receivers listen on 127.0.0.1 over plain http.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use url::Url;

/// The setting shared by the processes that make such requests.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct OutboundArgs {
    /// Allow http:// and private, loopback and link-local addresses for webhook endpoints (tests
    /// and the demo only: it lets tenants reach this machine and its network).
    #[arg(long = "outbound-allow-private", env = "AUTOSOCIAL_OUTBOUND_ALLOW_PRIVATE",
          value_name = "AUTOSOCIAL_OUTBOUND_ALLOW_PRIVATE", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub allow_private: bool,
}

/// What the guard lets through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// http and non-public addresses too (tests, the demo).
    pub allow_private: bool,
}

impl From<OutboundArgs> for Policy {
    fn from(a: OutboundArgs) -> Policy {
        Policy {
            allow_private: a.allow_private,
        }
    }
}

/// Why a URL or an address is refused; the text is shown to the agency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("use an https:// URL")]
    NotHttps,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("{0} is a {1} address; only public addresses can be reached")]
    Address(IpAddr, &'static str),
    #[error("{0} resolves only to addresses that cannot be reached ({1})")]
    Resolved(String, &'static str),
    #[error("{0} could not be resolved")]
    Unresolved(String),
}

/// The class of a non-public IPv4 address, or `None` for a public one.
fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (\"this network\")",
        (127, _, _) => "loopback",
        (10, _, _) => "private",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved or broadcast",
        _ => return None,
    })
}

/// The class of a non-public IPv6 address (IPv4 inside it judged as IPv4), or `None`.
fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d (mapped), 64:ff9b::a.b.c.d (NAT64): the IPv4 address decides
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return v4_class(v4);
    }
    Some(match s[0] {
        // ::a.b.c.d (IPv4-compatible, deprecated) and the rest of ::/96
        0 if s[1..6] == [0, 0, 0, 0, 0] => "IPv4-compatible",
        x if x & 0xfe00 == 0xfc00 => "unique local (private)",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x3fff if s[1] & 0xf000 == 0 => "documentation",
        // 2002::/16 (6to4) carries an IPv4 address: refuse it when that one is refused
        0x2002 => {
            let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
            return v4_class(v4);
        }
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    })
}

/// The class of a non-public address, or `None` for a public unicast one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

/// Whether `ip` may be connected to under `policy`.
pub fn check_ip(ip: IpAddr, policy: Policy) -> Result<(), Refused> {
    match non_public(ip) {
        Some(class) if !policy.allow_private => Err(Refused::Address(ip, class)),
        _ => Ok(()),
    }
}

/// What can be said about a URL without resolving it: the scheme, no credentials, and an
/// address literal's class. Names are checked when they are resolved ([`GuardedResolver`]).
pub fn check_url(url: &Url, policy: Policy) -> Result<(), Refused> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_private => {}
        _ => return Err(Refused::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    match url.host() {
        None => Err(Refused::NoHost),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), policy),
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), policy),
        Some(url::Host::Domain("")) => Err(Refused::NoHost),
        Some(url::Host::Domain(_)) => Ok(()),
    }
}

/// Keep the addresses `policy` allows; refuse the name when none is left.
pub fn filter_resolved(
    name: &str,
    addrs: impl IntoIterator<Item = SocketAddr>,
    policy: Policy,
) -> Result<Vec<SocketAddr>, Refused> {
    let mut kept = Vec::new();
    let mut refused = None;
    for a in addrs {
        match check_ip(a.ip(), policy) {
            Ok(()) => kept.push(a),
            Err(Refused::Address(_, class)) => refused = Some(class),
            Err(_) => {}
        }
    }
    match (kept.is_empty(), refused) {
        (false, _) => Ok(kept),
        (true, Some(class)) => Err(Refused::Resolved(name.to_owned(), class)),
        (true, None) => Err(Refused::Unresolved(name.to_owned())),
    }
}

/// A resolver for reqwest that hands the connector only the addresses [`check_ip`] allows.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub policy: Policy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| Refused::Unresolved(host.clone()))?
                .collect();
            let kept = filter_resolved(&host, found, policy)?;
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client for tenant-chosen URLs: names resolved through [`GuardedResolver`], no
/// redirects, no proxy from the environment, `timeout` for the whole exchange.
pub fn client(policy: Policy, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent("AutoSocial-Webhooks/1")
        .build()
        .expect("a TLS backend is compiled in")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_private: false,
    };
    const OPEN: Policy = Policy {
        allow_private: true,
    };

    fn class(s: &str) -> Option<&'static str> {
        non_public(s.parse().unwrap())
    }

    #[test]
    fn every_non_public_ipv4_class_is_refused() {
        for (ip, want) in [
            ("0.0.0.0", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
        ] {
            let c = class(ip).unwrap_or_else(|| panic!("{ip} was let through"));
            assert!(c.contains(want), "{ip}: {c}");
        }
    }

    #[test]
    fn public_ipv4_next_to_the_refused_ranges_passes() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "169.253.0.1",
            "198.20.0.1",
            "223.255.255.254",
        ] {
            assert_eq!(class(ip), None, "{ip} was refused");
        }
    }

    #[test]
    fn every_non_public_ipv6_class_is_refused_and_mapped_ipv4_is_judged_as_ipv4() {
        for (ip, want) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:100.64.1.1", "CGNAT"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:c0a8:0101::1", "private"),
            ("::7f00:1", "IPv4-compatible"),
            ("100::1", "discard-only"),
        ] {
            let c = class(ip).unwrap_or_else(|| panic!("{ip} was let through"));
            assert!(c.contains(want), "{ip}: {c}");
        }
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(class(ip), None, "{ip} was refused");
        }
    }

    #[test]
    fn urls_must_be_https_without_credentials_and_literals_public() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(check_url(&u("https://hooks.example.com/x"), STRICT), Ok(()));
        assert_eq!(
            check_url(&u("http://hooks.example.com/x"), STRICT),
            Err(Refused::NotHttps)
        );
        assert_eq!(
            check_url(&u("ftp://hooks.example.com/x"), OPEN),
            Err(Refused::NotHttps)
        );
        assert_eq!(
            check_url(&u("https://user:pw@hooks.example.com/"), STRICT),
            Err(Refused::Credentials)
        );
        assert!(matches!(
            check_url(&u("https://127.0.0.1:8443/hook"), STRICT),
            Err(Refused::Address(_, "loopback"))
        ));
        assert!(matches!(
            check_url(&u("https://[::ffff:192.168.0.1]/hook"), STRICT),
            Err(Refused::Address(_, "private"))
        ));
        // decimal and hex spellings are normalised by the URL parser, then judged
        assert!(matches!(
            check_url(&u("https://2130706433/hook"), STRICT),
            Err(Refused::Address(_, "loopback"))
        ));
        assert!(matches!(
            check_url(&u("https://0x7f.1/hook"), STRICT),
            Err(Refused::Address(_, "loopback"))
        ));
        // the setting lets tests and the demo reach a local receiver
        assert_eq!(check_url(&u("http://127.0.0.1:9000/hook"), OPEN), Ok(()));
    }

    #[test]
    fn resolved_addresses_are_filtered_and_a_name_with_none_left_is_refused() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let kept = filter_resolved(
            "mixed.example",
            [a("10.0.0.1:0"), a("93.184.216.34:0")],
            STRICT,
        )
        .unwrap();
        assert_eq!(kept, vec![a("93.184.216.34:0")]);
        assert_eq!(
            filter_resolved("rebind.example", [a("127.0.0.1:0")], STRICT),
            Err(Refused::Resolved("rebind.example".into(), "loopback"))
        );
        assert_eq!(
            filter_resolved("local.example", [a("127.0.0.1:0")], OPEN).unwrap(),
            vec![a("127.0.0.1:0")]
        );
    }

    #[tokio::test]
    async fn the_client_does_not_connect_to_a_name_that_resolves_to_loopback() {
        // `localhost` resolves to loopback on every machine; nothing needs to listen there
        let c = client(STRICT, Duration::from_secs(5));
        let err = c.get("https://localhost:1/").send().await.unwrap_err();
        let chain = format!("{:?}", anyhow::Error::from(err));
        assert!(chain.contains("loopback"), "{chain}");
    }
}
