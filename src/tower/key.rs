//! Who a request counts against: [`KeyExtractor`] and the extractors this
//! crate ships (the peer address, the client behind trusted proxies, a
//! header, or a closure).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, FORWARDED};
use http::{Extensions, HeaderMap, Method, Uri};

use crate::error::{Error, Result};

/// What an extractor (and an exemption) sees of a request: everything but
/// its body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        RequestHead {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request target.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (where servers put the peer address).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The address of the connection's peer: axum's
    /// `ConnectInfo<SocketAddr>` (with feature `axum`) or a plain
    /// [`SocketAddr`] extension, as a hand-written hyper server inserts.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        #[cfg(feature = "axum")]
        if let Some(info) = self
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
        {
            return Some(info.0);
        }
        self.extensions.get::<SocketAddr>().copied()
    }
}

/// Names the identity a request counts against. `None` means the request
/// carries no identity at all (a server set up without peer addresses, a
/// missing header): the layer answers it `500 Internal Server Error` rather
/// than let it through unlimited; exempt requests with
/// [`exempt`](super::RateLimitLayerBuilder::exempt) instead.
///
/// Closures `Fn(&RequestHead) -> Option<String>` are extractors.
pub trait KeyExtractor: Send + Sync + 'static {
    /// The key of `request`.
    fn extract(&self, request: &RequestHead<'_>) -> Option<String>;
}

impl<F> KeyExtractor for F
where
    F: Fn(&RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
{
    fn extract(&self, request: &RequestHead<'_>) -> Option<String> {
        self(request)
    }
}

/// The peer's IP address (the port left out), the default key. Behind a
/// reverse proxy every request has the proxy's address: use
/// [`ForwardedFor`] there.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerIp;

impl KeyExtractor for PeerIp {
    fn extract(&self, request: &RequestHead<'_>) -> Option<String> {
        request.peer_addr().map(|addr| addr.ip().to_string())
    }
}

/// The value of one request header (e.g. an API key), the request having no
/// key when the header is absent or not visible ASCII.
#[derive(Debug, Clone)]
pub struct Header(HeaderName);

impl Header {
    /// The header `name`; an invalid header name is a configuration error.
    pub fn new(name: &str) -> Result<Self> {
        HeaderName::try_from(name)
            .map(Header)
            .map_err(|_| Error::configuration(format!("`{name}` is not a header name")))
    }
}

impl KeyExtractor for Header {
    fn extract(&self, request: &RequestHead<'_>) -> Option<String> {
        let value = request.headers.get(&self.0)?.to_str().ok()?;
        Some(value.to_owned())
    }
}

/// An address range: one address, or a CIDR block such as `10.0.0.0/8`
/// or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `192.0.2.7`, `10.0.0.0/8`, `::1` or `fd00::/8`; anything else
    /// is a configuration error.
    pub fn parse(range: &str) -> Result<Self> {
        let bad = || Error::configuration(format!("`{range}` is not an IP address or CIDR range"));
        let (addr, prefix) = match range.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (range, None),
        };
        let base: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let width = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
        };
        Ok(IpRange { base, prefix })
    }

    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address is
    /// compared as the IPv4 address it maps).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.base), ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                masked(u32::from(base).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                masked(base.into(), self.prefix, 128) == masked(ip.into(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    bits >> (width - prefix)
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The client's IP address as reverse proxies you trust report it, in the
/// `Forwarded` header (RFC 7239, `for=`) or, when that is absent,
/// `X-Forwarded-For`.
///
/// Only hops you trust are believed: when the peer is not a trusted proxy,
/// its own address is the key (whatever headers it sent). Otherwise the
/// addresses the proxies appended are read from the right, skipping trusted
/// proxies; the first one that is not trusted is the client. An entry that
/// is not an address (`unknown`, an obfuscated name, garbage) ends the walk:
/// the key is then the last address a trusted proxy vouched for. So a client
/// cannot pick its own key by sending the headers itself.
///
/// ```
/// use limitstore::tower::ForwardedFor;
///
/// let key = ForwardedFor::trusting(["10.0.0.0/8", "127.0.0.1"]).unwrap();
/// # let _ = key;
/// ```
#[derive(Debug, Clone)]
pub struct ForwardedFor {
    trusted: Vec<IpRange>,
}

impl ForwardedFor {
    /// Trusts the proxies in `ranges` (addresses or CIDR blocks); a range
    /// that does not parse is a configuration error.
    pub fn trusting<I, S>(ranges: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let trusted = ranges
            .into_iter()
            .map(|r| IpRange::parse(r.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(ForwardedFor { trusted })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|range| range.contains(ip))
    }

    /// The client address of a request whose peer is `peer`.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = forwarded_for(headers);
        let chain = forwarded.unwrap_or_else(|| x_forwarded_for(headers));
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) if self.trusts(*ip) => client = *ip,
                Some(ip) => return *ip,
                None => return client,
            }
        }
        client
    }
}

impl KeyExtractor for ForwardedFor {
    fn extract(&self, request: &RequestHead<'_>) -> Option<String> {
        let peer = request.peer_addr()?.ip();
        Some(canonical(self.client(peer, request.headers)).to_string())
    }
}

/// The `for=` addresses of every `Forwarded` header, in order; `None` when
/// there is no such header. An entry that is not an address is `None`.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut values = headers.get_all(FORWARDED).iter().peekable();
    values.peek()?;
    let mut hops = Vec::new();
    for value in values {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            });
            if let Some(node) = node {
                hops.push(node_ip(node.trim_matches('"')));
            }
        }
    }
    Some(hops)
}

/// A `Forwarded` node: `192.0.2.60`, `192.0.2.60:4711`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    node.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// The addresses of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(value) => hops.extend(value.split(',').map(|hop| node_ip(hop.trim()))),
            Err(_) => hops.push(None),
        }
    }
    hops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn ranges() {
        let r = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains(ip("10.255.0.1")));
        assert!(!r.contains(ip("11.0.0.1")));
        assert!(r.contains(ip("::ffff:10.1.2.3")));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!IpRange::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        let v6 = IpRange::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(IpRange::parse("192.0.2.7")
            .unwrap()
            .contains(ip("192.0.2.7")));
        assert!(!IpRange::parse("192.0.2.7")
            .unwrap()
            .contains(ip("192.0.2.8")));
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/-1"] {
            let e = IpRange::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Configuration, "{bad}");
        }
    }

    #[test]
    fn untrusted_peers_are_their_own_key() {
        let key = ForwardedFor::trusting(["10.0.0.0/8"]).unwrap();
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")]);
        assert_eq!(key.client(ip("192.0.2.1"), &spoofed), ip("192.0.2.1"));
    }

    #[test]
    fn trusted_chains_are_read_from_the_right() {
        let key = ForwardedFor::trusting(["10.0.0.0/8"]).unwrap();
        let peer = ip("10.0.0.1");
        // The client may prepend anything; only what trusted hops appended counts.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")]);
        assert_eq!(key.client(peer, &h), ip("1.2.3.4"));
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        assert_eq!(key.client(peer, &h), ip("1.2.3.4"));
        // Only trusted hops: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(key.client(peer, &h), ip("10.0.0.3"));
        // No header: the peer.
        assert_eq!(key.client(peer, &HeaderMap::new()), peer);
        // Garbage stops the walk at the last vouched-for address.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, unknown, 10.0.0.2")]);
        assert_eq!(key.client(peer, &h), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let key = ForwardedFor::trusting(["10.0.0.0/8"]).unwrap();
        let peer = ip("10.0.0.1");
        let h = headers(&[
            ("x-forwarded-for", "9.9.9.9"),
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, For=10.0.0.7:80",
            ),
        ]);
        assert_eq!(key.client(peer, &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")]);
        assert_eq!(key.client(peer, &h), ip("192.0.2.60"));
        let h = headers(&[("forwarded", "for=_hidden, for=10.0.0.9")]);
        assert_eq!(key.client(peer, &h), ip("10.0.0.9"));
    }

    #[test]
    fn header_keys() {
        assert!(Header::new("bad header").is_err());
        let key = Header::new("x-api-key").unwrap();
        let request = http::Request::builder()
            .header("x-api-key", "k1")
            .body(())
            .unwrap();
        assert_eq!(
            key.extract(&RequestHead::of(&request)).as_deref(),
            Some("k1")
        );
        let bare = http::Request::new(());
        assert_eq!(key.extract(&RequestHead::of(&bare)), None);
        assert_eq!(PeerIp.extract(&RequestHead::of(&bare)), None);
        let mut with_peer = http::Request::new(());
        with_peer
            .extensions_mut()
            .insert("[::1]:80".parse::<SocketAddr>().unwrap());
        assert_eq!(
            PeerIp.extract(&RequestHead::of(&with_peer)).as_deref(),
            Some("::1")
        );
    }
}
