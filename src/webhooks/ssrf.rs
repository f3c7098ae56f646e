//! Outbound request guard for webhook URLs.
//!
//! Webhook endpoints are URLs chosen by API clients, and the server fetches them: without a guard, a client could
//! point a webhook at `http://169.254.169.254/` (cloud metadata), `http://localhost:5432/` or anything else on the
//! server's private network and use the deliveries to probe or attack it (server-side request forgery, SSRF).
//!
//! The guard works in two places:
//!
//! * **At save time, and before each request**, [`check_url`] checks the URL's shape (https, or http when allowed;
//!   a host; no `user:pass@`) and refuses hosts that are non-public IP literals or `localhost` / `*.localhost`.
//!   Doing it before each request matters because reqwest does not call the DNS resolver for IP-literal hosts, so
//!   [`check_url`] is the only check those get.
//! * **On every connection**, after DNS resolution: the client built by [`client`] uses [`GuardedResolver`], which
//!   reqwest calls for every new connection to a named host. It drops every address that is not publicly routable,
//!   so a name that resolves to a private address (or is re-pointed to one after it was saved: DNS rebinding) is
//!   refused where it counts, at connect time. The client also follows no redirects (a redirect could lead anywhere)
//!   and ignores proxy settings from the environment (a proxy would do the resolution instead of us).
//!
//! [`EgressPolicy`] relaxes the guard for development and tests (`allow_http`, `allow_private`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What outbound webhook requests may reach. The default (both false) is the production setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EgressPolicy {
    /// Accept `http://` URLs as well as `https://`.
    pub allow_http: bool,
    /// Accept hosts that are (or resolve to) non-public addresses: loopback, private networks, link-local...
    pub allow_private: bool,
}

/// Why a webhook URL was refused. The messages are meant for API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("the webhook URL is not a valid URL: {0}")]
    Invalid(String),
    /// A scheme other than https (or http, when allowed).
    #[error("the webhook URL scheme {scheme:?} is not allowed: {expected}")]
    Scheme { scheme: String, expected: &'static str },
    /// `user:pass@` in the URL.
    #[error("the webhook URL must not contain credentials (user:password@)")]
    Credentials,
    /// No host.
    #[error("the webhook URL has no host")]
    NoHost,
    /// The host is an IP literal or `localhost` that is not publicly routable.
    #[error("the webhook URL was refused: the address {0} is not publicly routable")]
    Private(String),
}

/// Whether an address is publicly routable. IPv4: false for 0.0.0.0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16,
/// 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4,
/// 255.255.255.255. IPv6: false for ::, ::1, fc00::/7, fe80::/10, ff00::/8, 2001:db8::/32, 100::/64, and for
/// ::ffff:a.b.c.d (IPv4-mapped), 64:ff9b::/96 (NAT64) and 2002::/16 (6to4) judge the embedded IPv4 address.
///
/// Also false, to be safe: the deprecated IPv4-compatible ::a.b.c.d (::/96), site-local fec0::/10 and the local-use
/// NAT64 prefix 64:ff9b:1::/48.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // 0.0.0.0/8 "this network"
        || a == 10 // 10/8 private
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10 CGNAT
        || a == 127 // 127/8 loopback
        || (a == 169 && b == 254) // 169.254/16 link-local (cloud metadata)
        || (a == 172 && (b & 0xf0) == 16) // 172.16/12 private
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // 192.0.2/24 TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 192.88.99/24 6to4 relay anycast
        || (a == 192 && b == 168) // 192.168/16 private
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100) // 198.51.100/24 TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // 203.0.113/24 TEST-NET-3
        || a >= 224) // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Addresses that embed an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d
        return is_global_v4(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // 64:ff9b::/96 NAT64
        return is_global_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 2002::/16 6to4: 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD
        return is_global_v4(embedded_v4(s[1], s[2]));
    }
    !(s[..6] == [0, 0, 0, 0, 0, 0] // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 deprecated site-local
        || (s[0] & 0xff00) == 0xff00 // ff00::/8 multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32 documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard-only
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)) // 64:ff9b:1::/48 local-use NAT64
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Parses and checks a webhook URL: scheme https (or http if policy.allow_http), a host, no userinfo; if the host is
/// an IP literal (v4 or [v6]) or "localhost"/"*.localhost", it must be global unless policy.allow_private.
/// Returns the parsed reqwest::Url.
pub fn check_url(url: &str, policy: &EgressPolicy) -> Result<reqwest::Url, UrlError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| UrlError::Invalid(e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        other => {
            let expected = if policy.allow_http { "use https or http" } else { "use https" };
            return Err(UrlError::Scheme { scheme: other.to_owned(), expected });
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = match parsed.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => return Err(UrlError::NoHost),
    };
    if !policy.allow_private {
        // The url crate normalises IP literals (e.g. "0x7f.1" becomes "127.0.0.1") and lower-cases domains.
        let literal = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        };
        match literal {
            Some(ip) if !is_global(ip) => return Err(UrlError::Private(ip.to_string())),
            Some(_) => {}
            None => {
                let domain = host.trim_end_matches('.').to_ascii_lowercase();
                if domain == "localhost" || domain.ends_with(".localhost") {
                    return Err(UrlError::Private(host.to_owned()));
                }
            }
        }
    }
    Ok(parsed)
}

/// The error of [`GuardedResolver`] when nothing publicly routable is left.
#[derive(Debug)]
struct NonPublicHost(String);

impl fmt::Display for NonPublicHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webhook host {} resolves only to non-public addresses", self.0)
    }
}

impl std::error::Error for NonPublicHost {}

/// A reqwest DNS resolver that resolves with tokio::net::lookup_host and drops every non-global address unless
/// allow_private; if no address is left it fails with an error naming the host ("resolves only to non-public
/// addresses"). Implements reqwest::dns::Resolve.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver {
    policy: EgressPolicy,
}

impl GuardedResolver {
    pub fn new(policy: EgressPolicy) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.policy.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest replaces it with the URL's port (or the scheme's default).
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_global(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(NonPublicHost(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for webhook deliveries: no redirects (reqwest::redirect::Policy::none()), the GuardedResolver,
/// total request timeout `timeout`, connect timeout min(timeout, 10 s), user agent
/// "casapay-webhooks/<CARGO_PKG_VERSION>", no proxy from the environment (`.no_proxy()`), pool idle timeout 90 s.
pub fn client(policy: EgressPolicy, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("casapay-webhooks/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        // These settings are static: the only failures left are in initialising the TLS backend (rustls with the
        // bundled webpki roots), which does not depend on the environment.
        .expect("static client settings")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    #[test]
    fn is_global_table() {
        let cases: &[(&str, bool)] = &[
            // IPv4 non-global, each range at its edges where useful.
            ("0.0.0.0", false),
            ("0.255.255.255", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("127.0.0.1", false),
            ("127.255.0.1", false),
            ("169.254.169.254", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("192.88.99.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv4 global.
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("192.0.1.1", true),
            ("223.255.255.255", true),
            // IPv6 non-global.
            ("::", false),
            ("::1", false),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            ("100::1", false),
            ("::127.0.0.1", false),
            ("fec0::1", false),
            ("64:ff9b:1::1", false),
            // Embedded IPv4: judged by the IPv4 address.
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::10.0.0.1", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::8.8.8.8", true),
            ("2002:7f00:1::", false),
            ("2002:a9fe:a9fe::1", false),
            ("2002:0808:0808::1", true),
            // IPv6 global.
            ("2606:4700:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("100:0:0:1::1", true),
        ];
        for &(addr, expected) in cases {
            assert_eq!(is_global(ip(addr)), expected, "is_global({addr})");
        }
    }

    const STRICT: EgressPolicy = EgressPolicy { allow_http: false, allow_private: false };
    const LAX: EgressPolicy = EgressPolicy { allow_http: true, allow_private: true };

    #[test]
    fn check_url_accepts_public_https() {
        let url = check_url("https://example.com/hook", &STRICT).unwrap();
        assert_eq!(url.as_str(), "https://example.com/hook");
        assert!(check_url("https://8.8.8.8/x", &STRICT).is_ok());
        assert!(check_url("https://[2606:4700:4700::1111]/x", &STRICT).is_ok());
        assert!(check_url("https://localhost.example.com/", &STRICT).is_ok());
    }

    #[test]
    fn check_url_scheme() {
        assert!(matches!(check_url("http://example.com/hook", &STRICT), Err(UrlError::Scheme { .. })));
        let http_ok = EgressPolicy { allow_http: true, ..STRICT };
        assert!(check_url("http://example.com/hook", &http_ok).is_ok());
        assert!(matches!(check_url("ftp://example.com/x", &STRICT), Err(UrlError::Scheme { .. })));
        assert!(matches!(check_url("ftp://example.com/x", &LAX), Err(UrlError::Scheme { .. })));
        assert_eq!(
            check_url("ftp://example.com/x", &STRICT).unwrap_err().to_string(),
            "the webhook URL scheme \"ftp\" is not allowed: use https"
        );
    }

    #[test]
    fn check_url_invalid_and_credentials() {
        assert!(matches!(check_url("not a url", &STRICT), Err(UrlError::Invalid(_))));
        assert!(matches!(check_url("", &STRICT), Err(UrlError::Invalid(_))));
        assert_eq!(check_url("https://user:pw@x.com", &STRICT), Err(UrlError::Credentials));
        assert_eq!(check_url("https://user@x.com", &LAX), Err(UrlError::Credentials));
    }

    #[test]
    fn check_url_refuses_private_hosts_unless_allowed() {
        let refused = [
            ("https://127.0.0.1/x", "127.0.0.1"),
            ("https://[::1]/", "::1"),
            ("https://localhost:8080/", "localhost"),
            ("https://api.LOCALHOST./", "api.localhost."),
            ("https://10.1.2.3", "10.1.2.3"),
            ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("https://0x7f.1/", "127.0.0.1"),
            ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ];
        let private_ok = EgressPolicy { allow_private: true, ..STRICT };
        for (url, addr) in refused {
            assert_eq!(check_url(url, &STRICT), Err(UrlError::Private(addr.to_owned())), "{url}");
            assert!(check_url(url, &private_ok).is_ok(), "{url} with allow_private");
        }
        assert_eq!(
            check_url("https://10.1.2.3", &STRICT).unwrap_err().to_string(),
            "the webhook URL was refused: the address 10.1.2.3 is not publicly routable"
        );
    }

    #[tokio::test]
    async fn guarded_resolver_refuses_localhost_unless_allowed() {
        let name = || "localhost".parse::<Name>().unwrap();

        let err = match GuardedResolver::new(STRICT).resolve(name()).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        let message = err.to_string();
        assert!(
            message.contains("localhost") && message.contains("resolves only to non-public addresses"),
            "{message}"
        );

        let addrs: Vec<SocketAddr> = GuardedResolver::new(EgressPolicy { allow_private: true, ..STRICT })
            .resolve(name())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    /// A one-shot HTTP server on 127.0.0.1 answering every request with a redirect; returns its port.
    fn redirecting_server() -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let response = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n\
                                Content-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = stream.write_all(response.as_bytes());
            }
        });
        port
    }

    #[tokio::test]
    async fn client_uses_guarded_resolver() {
        // No server needed: the request must fail in the resolver, before any connection is attempted.
        let strict_http = EgressPolicy { allow_http: true, allow_private: false };
        let err = client(strict_http, Duration::from_secs(5))
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("localhost must be refused at connect time");
        let chain = {
            let mut s = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(e) = source {
                s.push_str(&format!(": {e}"));
                source = e.source();
            }
            s
        };
        assert!(chain.contains("resolves only to non-public addresses"), "{chain}");
    }

    #[tokio::test]
    async fn client_does_not_follow_redirects() {
        let port = redirecting_server();
        let response =
            client(LAX, Duration::from_secs(5)).get(format!("http://localhost:{port}/")).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    }
}
