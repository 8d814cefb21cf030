//! Which URLs a webhook may call: `https://` to public addresses only, so
//! an admin's subscription (or a stolen admin token) cannot make the
//! service call its own network: loopback, private ranges, link-local
//! (the instance metadata address `169.254.169.254` among them), and the
//! like are refused. A name is resolved and every address it gives must be
//! public; deliveries resolve again through [`PublicOnlyResolver`] and
//! connect to exactly the addresses it checked, so a name that changes to
//! a private address later (DNS rebinding) is refused then.
//!
//! `WEBHOOK_ALLOW_INSECURE_URLS=true` (local development and tests only)
//! also allows `http://` and loopback addresses; never private ranges.
//! `WEBHOOK_ALLOWED_NETWORK` names one range (CIDR) of the operator's own
//! network whose addresses are allowed although they are not public: a
//! receiver inside the same VPC, or, in a LocalStack deployment, the Docker
//! bridge through which functions reach a receiver on the host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

/// The longest URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;
/// How long resolving a subscription's host may take: within the request's
/// deadline (3 s by default), so a resolver that does not answer is a 400
/// saying so, not a 503.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The SSRF rules of one deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// `http://` and loopback allowed (local development and tests).
    pub allow_insecure: bool,
    /// Addresses allowed though not public (`WEBHOOK_ALLOWED_NETWORK`).
    pub allowed_network: Option<Network>,
}

/// A range of addresses, `address/prefix` (an address alone is itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.1.0.0/16`, `fd00::/8` or an address alone.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| format!("`{address}` is not an IP address"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(prefix) if prefix <= bits => prefix,
                _ => return Err(format!("`/{prefix}` is not a prefix length of 0-{bits}")),
            },
        };
        Ok(Network { address, prefix })
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (network, candidate, bits) = match (self.address, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => (u32::from(network) as u128, u32::from(ip) as u128, 32),
            (IpAddr::V6(network), IpAddr::V6(ip)) => (u128::from(network), u128::from(ip), 128),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.prefix);
        host_bits == bits || (network >> host_bits) == (candidate >> host_bits)
    }
}

impl TargetPolicy {
    /// Checks everything a URL says by itself: scheme, credentials, host
    /// (an address literal must be allowed; a name must be qualified and
    /// not `localhost`). Names still need [`Self::check_resolved`].
    pub fn check_url(&self, raw: &str) -> Result<Url, String> {
        if raw.len() > MAX_URL_LENGTH {
            return Err(format!("must be at most {MAX_URL_LENGTH} characters"));
        }
        let url = Url::parse(raw).map_err(|e| format!("is not a valid absolute URL ({e})"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure => {}
            "http" => return Err("must use https://".into()),
            other => return Err(format!("must use https://, not {other}://")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        match url.host() {
            None => return Err("must name a host".into()),
            Some(Host::Ipv4(ip)) => self.check_address(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_address(IpAddr::V6(ip))?,
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.');
                if name == "localhost" || name.ends_with(".localhost") {
                    self.check_address(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                } else if !name.contains('.') {
                    return Err("must name a fully qualified host".into());
                }
            }
        }
        Ok(url)
    }

    /// [`Self::check_url`], then every address the host resolves to.
    pub async fn check_resolved(&self, raw: &str) -> Result<Url, String> {
        let url = self.check_url(raw)?;
        if let Some(Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            self.resolve(name, port).await?;
        }
        Ok(url)
    }

    /// The addresses of `name`, each allowed, or why not.
    pub async fn resolve(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)));
        let addresses: Vec<SocketAddr> = match lookup.await {
            Ok(Ok(addresses)) => addresses.collect(),
            Ok(Err(_)) => return Err(format!("host `{name}` does not resolve")),
            Err(_) => return Err(format!("host `{name}` did not resolve within {} s", RESOLVE_TIMEOUT.as_secs())),
        };
        if addresses.is_empty() {
            return Err(format!("host `{name}` does not resolve"));
        }
        for address in &addresses {
            self.check_address(address.ip()).map_err(|why| format!("host `{name}` {why}"))?;
        }
        Ok(addresses)
    }

    /// Whether a delivery may connect to `ip`.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), String> {
        if self.allowed_network.is_some_and(|network| network.contains(ip)) {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some("loopback") if self.allow_insecure => Ok(()),
            Some(kind) => Err(format!("resolves to a {kind} address ({ip}), not a public one")),
        }
    }
}

/// What kind of non-public address `ip` is; `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(ip),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (127, _, _) => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (0, _, _) => "unspecified",
        (192, 0, 0) => "protocol-assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    Some(match segments[0] {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        0xfc00..=0xfdff => "private",
        0xfe80..=0xfebf => "link-local",
        0xff00..=0xffff => "multicast",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
        0x0064 if segments[1] == 0xff9b && segments[2..6] == [0; 4] => {
            let [a, b] = segments[6].to_be_bytes();
            let [c, d] = segments[7].to_be_bytes();
            return classify_v4(Ipv4Addr::new(a, b, c, d));
        }
        // Other IPv4-compatible and reserved forms under ::/8.
        0x0000 => "reserved",
        _ => return None,
    })
}

/// A resolver for the delivery client that refuses names resolving to a
/// non-public address: the connection is made to the addresses checked
/// here, so nothing can change between the check and the connect.
pub struct PublicOnlyResolver {
    pub policy: TargetPolicy,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let addresses = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|why| -> Box<dyn std::error::Error + Send + Sync> { Box::new(std::io::Error::other(why)) })?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl PublicOnlyResolver {
    pub fn shared(policy: TargetPolicy) -> Arc<Self> {
        Arc::new(PublicOnlyResolver { policy })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetPolicy = TargetPolicy { allow_insecure: false, allowed_network: None };
    const INSECURE: TargetPolicy = TargetPolicy { allow_insecure: true, allowed_network: None };

    #[test]
    fn an_allowed_network_opens_its_own_addresses_and_no_others() {
        let bridge = TargetPolicy { allowed_network: Some(Network::parse("172.17.0.1").unwrap()), ..INSECURE };
        assert!(bridge.check_url("http://172.17.0.1:8080/hook").is_ok());
        assert!(bridge.check_url("http://172.17.0.2/").is_err());
        assert!(bridge.check_url("http://10.0.0.1/").is_err());
        let vpc = TargetPolicy { allowed_network: Some(Network::parse("10.1.0.0/16").unwrap()), ..STRICT };
        assert!(vpc.check_url("https://10.1.200.7/hook").is_ok());
        assert!(vpc.check_address("::ffff:10.1.0.9".parse().unwrap()).is_ok());
        assert!(vpc.check_url("https://10.2.0.1/").is_err());
        assert!(vpc.check_url("http://10.1.0.1/").is_err(), "the network does not allow http://");
        assert!(vpc.check_url("https://169.254.169.254/").is_err());
        let v6 = Network::parse("fd00:1::/32").unwrap();
        assert!(v6.contains("fd00:1:ffff::1".parse().unwrap()));
        assert!(!v6.contains("fd00:2::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "fd00::/129", "10.0.0/8", "host.example.com", "10.0.0.0/x"] {
            assert!(Network::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_https_to_public_addresses_passes_the_strict_policy() {
        assert!(STRICT.check_url("https://93.184.215.14/hooks").is_ok());
        assert!(STRICT.check_url("https://[2606:4700::1111]/hooks").is_ok());
        assert!(STRICT.check_url("https://hooks.example.com/shop?x=1").is_ok());
        for (url, why) in [
            ("http://hooks.example.com/", "https"),
            ("ftp://hooks.example.com/", "https"),
            ("https://127.0.0.1/", "loopback"),
            ("https://127.9.9.9:8443/", "loopback"),
            ("https://[::1]/", "loopback"),
            ("https://localhost/", "loopback"),
            ("https://api.localhost/", "loopback"),
            ("https://10.0.0.8/", "private"),
            ("https://172.20.1.1/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://[fd00::1]/", "private"),
            ("https://169.254.169.254/latest/meta-data/", "link-local"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[::ffff:169.254.169.254]/", "link-local"),
            ("https://[64:ff9b::a9fe:a9fe]/", "link-local"),
            ("https://0.0.0.0/", "unspecified"),
            ("https://100.64.0.1/", "carrier-grade"),
            ("https://224.0.0.1/", "multicast"),
            ("https://intranet/", "fully qualified"),
            ("https://user:pw@hooks.example.com/", "credentials"),
            ("not a url", "valid absolute URL"),
            ("https://", "valid absolute URL"),
        ] {
            let err = STRICT.check_url(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
        assert!(STRICT.check_url(&format!("https://a.example.com/{}", "x".repeat(MAX_URL_LENGTH))).is_err());
    }

    #[test]
    fn the_insecure_policy_allows_http_and_loopback_but_never_private_ranges() {
        assert!(INSECURE.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(INSECURE.check_url("http://localhost:8080/hook").is_ok());
        assert!(INSECURE.check_url("http://10.0.0.1/").is_err());
        assert!(INSECURE.check_url("http://169.254.169.254/").is_err());
    }

    #[tokio::test]
    async fn a_name_is_checked_by_every_address_it_resolves_to() {
        let err = STRICT.check_resolved("https://localhost./hook").await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        assert!(INSECURE.resolve("localhost", 80).await.is_ok());
        let err = STRICT.resolve("localhost", 80).await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let err = STRICT.check_resolved("https://no-such-host.invalid/hook").await.unwrap_err();
        assert!(err.contains("does not resolve"), "{err}");
    }
}
