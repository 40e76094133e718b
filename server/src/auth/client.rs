//! Which client a request comes from, for throttling and logs: the TCP peer, unless the
//! peer is one of `--trusted-proxies`, in which case the address it forwarded for.
//!
//! `X-Forwarded-For` is a list each proxy appends to, so only its right end is
//! trustworthy: walking from the right, trusted proxies are skipped and the first other
//! address is the client. From an untrusted peer the header is ignored entirely, since
//! anyone can send it.

use std::net::IpAddr;

use super::Cidr;

/// The client of a request from `peer` carrying `forwarded_for` (every
/// `X-Forwarded-For` value, in order).
pub fn client_address<'a>(peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| super::cidr::any_contains(trusted, ip);
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> =
        forwarded_for.into_iter().flat_map(|v| v.split(',')).filter_map(|h| parse_hop(h.trim())).collect();
    hops.iter().rev().copied().find(|ip| !is_trusted(*ip)).or(hops.first().copied()).unwrap_or(peer)
}

/// One hop: an address, possibly with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_hop(h: &str) -> Option<IpAddr> {
    if let Ok(ip) = h.parse() {
        return Some(ip);
    }
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    h.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy_and_only_its_right_end() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        // An untrusted peer cannot choose its address.
        assert_eq!(client_address(ip("192.0.2.9"), ["1.1.1.1"], &trusted), ip("192.0.2.9"));
        // Through the trusted proxy: the client it saw.
        assert_eq!(client_address(ip("127.0.0.1"), ["198.51.100.7"], &trusted), ip("198.51.100.7"));
        // A client that sent its own header: the proxy appended the real one, which wins.
        assert_eq!(client_address(ip("127.0.0.1"), ["6.6.6.6, 198.51.100.7"], &trusted), ip("198.51.100.7"));
        // Two trusted hops, in one header or two.
        assert_eq!(client_address(ip("127.0.0.1"), ["198.51.100.7", "10.1.2.3"], &trusted), ip("198.51.100.7"));
        assert_eq!(client_address(ip("127.0.0.1"), ["[2001:db8::5]:443, 10.1.2.3:80"], &trusted), ip("2001:db8::5"));
        // No header, or nothing usable in it: the proxy itself.
        assert_eq!(client_address(ip("127.0.0.1"), [], &trusted), ip("127.0.0.1"));
        assert_eq!(client_address(ip("127.0.0.1"), ["unknown, garbage"], &trusted), ip("127.0.0.1"));
        // Only trusted hops: the first of them.
        assert_eq!(client_address(ip("127.0.0.1"), ["10.0.0.5, 10.0.0.6"], &trusted), ip("10.0.0.5"));
        // No trusted proxies configured: the header is never read.
        assert_eq!(client_address(ip("127.0.0.1"), ["198.51.100.7"], &[]), ip("127.0.0.1"));
    }
}
