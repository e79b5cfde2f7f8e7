//! Classification of IP addresses for SSRF protection (CL-DISC-07, AS-CMD-01).
//!
//! Anything listed in the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its
//! updates) is refused, whether or not the registry marks it "globally reachable": no legitimate atproto
//! service lives on an anycast relay, a documentation prefix or a benchmarking network. IPv6 addresses
//! outside global unicast `2000::/3` are refused too. Addresses that embed an IPv4 address
//! (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the embedded address;
//! IPv4-compatible and IPv4-translated forms are refused outright.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not an acceptable destination for an outbound fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockReason {
    /// `0.0.0.0` or `::`.
    Unspecified,
    /// `0.0.0.0/8`, "this network" (RFC 791).
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`. Allowed only by [`crate::http::SafeHttpClientBuilder::allow_http_loopback`].
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16` (RFC 1918).
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16` (includes cloud metadata endpoints such as `169.254.169.254`), `fe80::/10`.
    LinkLocal,
    /// `192.0.0.0/24`, `2001::/23` (IETF protocol assignments, includes Teredo `2001::/32`).
    IetfProtocolAssignment,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15` (RFC 2544).
    Benchmarking,
    /// `192.31.196.0/24` AS112 and `192.52.193.0/24` AMT anycast.
    Anycast,
    /// `192.88.99.0/24`, deprecated 6to4 relay anycast (RFC 7526).
    Relay6to4,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4` and other reserved space, including IPv6 outside `2000::/3` not named elsewhere.
    Reserved,
    /// `::a.b.c.d` (deprecated IPv4-compatible) and `::ffff:0:a.b.c.d` (IPv4-translated).
    Ipv4Compatible,
    /// `64:ff9b:1::/48`, local-use NAT64 (RFC 8215).
    LocalUseNat64,
    /// `100::/64`, discard-only (RFC 6666).
    DiscardOnly,
    /// `fc00::/7`, unique local addresses (RFC 4193).
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local.
    SiteLocal,
    /// `5f00::/16`, SRv6 SIDs (RFC 9602).
    Srv6Sid,
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "unspecified address",
            Self::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            Self::Loopback => "loopback address",
            Self::Private => "private-use address (RFC 1918)",
            Self::SharedAddressSpace => "shared address space / CGNAT (100.64.0.0/10)",
            Self::LinkLocal => "link-local address",
            Self::IetfProtocolAssignment => "IETF protocol assignment",
            Self::Documentation => "documentation prefix",
            Self::Benchmarking => "benchmarking network (198.18.0.0/15)",
            Self::Anycast => "special-purpose anycast prefix",
            Self::Relay6to4 => "6to4 relay anycast (192.88.99.0/24)",
            Self::Multicast => "multicast address",
            Self::Broadcast => "limited broadcast address",
            Self::Reserved => "reserved address space",
            Self::Ipv4Compatible => "IPv4-compatible/translated IPv6 address",
            Self::LocalUseNat64 => "local-use NAT64 prefix (64:ff9b:1::/48)",
            Self::DiscardOnly => "discard-only prefix (100::/64)",
            Self::UniqueLocal => "unique local address (fc00::/7)",
            Self::SiteLocal => "site-local address (fec0::/10)",
            Self::Srv6Sid => "SRv6 SID prefix (5f00::/16)",
        })
    }
}

/// Classifies `ip`: `None` means a public unicast address, `Some(reason)` a special-use one.
///
/// ```
/// use atauth_identity::http::{BlockReason, classify_ip};
///
/// assert_eq!(classify_ip("169.254.169.254".parse()?), Some(BlockReason::LinkLocal));
/// assert_eq!(classify_ip("::ffff:10.0.0.1".parse()?), Some(BlockReason::Private));
/// assert_eq!(classify_ip("1.1.1.1".parse()?), None);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn classify_ip(ip: IpAddr) -> Option<BlockReason> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether `ip` is a loopback address a development setup may talk to: `127.0.0.0/8`, `::1` or
/// `::ffff:127.x.y.z`. Loopback addresses embedded in NAT64 or 6to4 forms are not.
pub fn is_loopback_destination(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<BlockReason> {
    use BlockReason as R;
    let reason = match ip.octets() {
        [0, 0, 0, 0] => R::Unspecified,
        [0, ..] => R::ThisNetwork,
        [10, ..] => R::Private,
        [100, b, ..] if (64..=127).contains(&b) => R::SharedAddressSpace,
        [127, ..] => R::Loopback,
        [169, 254, ..] => R::LinkLocal,
        [172, b, ..] if (16..=31).contains(&b) => R::Private,
        [192, 0, 0, _] => R::IetfProtocolAssignment,
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => R::Documentation,
        [192, 31, 196, _] | [192, 52, 193, _] => R::Anycast,
        [192, 88, 99, _] => R::Relay6to4,
        [192, 168, ..] => R::Private,
        [198, 18 | 19, ..] => R::Benchmarking,
        [224..=239, ..] => R::Multicast,
        [255, 255, 255, 255] => R::Broadcast,
        [240..=255, ..] => R::Reserved,
        _ => return None,
    };
    Some(reason)
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockReason> {
    use BlockReason as R;
    if ip.is_unspecified() {
        return Some(R::Unspecified);
    }
    if ip.is_loopback() {
        return Some(R::Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d — the kernel connects to the IPv4 address.
        return classify_v4(v4);
    }
    let s = ip.segments();
    match s {
        // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765) and ::a.b.c.d (IPv4-compatible, deprecated).
        [0, 0, 0, 0, 0xffff, 0, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(R::Ipv4Compatible),
        // NAT64 well-known prefix (RFC 6052): judged by the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded_v4(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Some(R::LocalUseNat64),
        [0x100, 0, 0, 0, ..] => Some(R::DiscardOnly),
        // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD.
        [0x2002, hi, lo, ..] => classify_v4(embedded_v4(hi, lo)),
        [0x2001, 0x0db8, ..] => Some(R::Documentation),
        [0x2001, b, ..] if b < 0x0200 => Some(R::IetfProtocolAssignment),
        [0x3fff, b, ..] if b < 0x1000 => Some(R::Documentation),
        [a, ..] if a & 0xe000 == 0x2000 => None,
        [a, ..] if a & 0xfe00 == 0xfc00 => Some(R::UniqueLocal),
        [a, ..] if a & 0xffc0 == 0xfe80 => Some(R::LinkLocal),
        [a, ..] if a & 0xffc0 == 0xfec0 => Some(R::SiteLocal),
        [a, ..] if a & 0xff00 == 0xff00 => Some(R::Multicast),
        [0x5f00, ..] => Some(R::Srv6Sid),
        _ => Some(R::Reserved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<BlockReason> {
        classify_ip(s.parse().expect("ip literal"))
    }

    #[test]
    fn ipv4_special_use_ranges() {
        use BlockReason as R;
        let cases = [
            ("0.0.0.0", Some(R::Unspecified)),
            ("0.1.2.3", Some(R::ThisNetwork)),
            ("10.0.0.1", Some(R::Private)),
            ("10.255.255.255", Some(R::Private)),
            ("100.63.255.255", None),
            ("100.64.0.1", Some(R::SharedAddressSpace)),
            ("100.127.255.255", Some(R::SharedAddressSpace)),
            ("100.128.0.0", None),
            ("127.0.0.1", Some(R::Loopback)),
            ("127.255.0.9", Some(R::Loopback)),
            ("169.254.169.254", Some(R::LinkLocal)),
            ("172.15.255.255", None),
            ("172.16.0.1", Some(R::Private)),
            ("172.31.255.255", Some(R::Private)),
            ("172.32.0.0", None),
            ("192.0.0.8", Some(R::IetfProtocolAssignment)),
            ("192.0.2.1", Some(R::Documentation)),
            ("192.31.196.1", Some(R::Anycast)),
            ("192.52.193.1", Some(R::Anycast)),
            ("192.88.99.1", Some(R::Relay6to4)),
            ("192.168.1.1", Some(R::Private)),
            ("198.17.255.255", None),
            ("198.18.0.1", Some(R::Benchmarking)),
            ("198.19.255.255", Some(R::Benchmarking)),
            ("198.20.0.0", None),
            ("198.51.100.7", Some(R::Documentation)),
            ("203.0.113.9", Some(R::Documentation)),
            ("224.0.0.1", Some(R::Multicast)),
            ("239.255.255.255", Some(R::Multicast)),
            ("240.0.0.1", Some(R::Reserved)),
            ("255.255.255.255", Some(R::Broadcast)),
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_special_use_ranges() {
        use BlockReason as R;
        let cases = [
            ("::", Some(R::Unspecified)),
            ("::1", Some(R::Loopback)),
            ("::ffff:127.0.0.1", Some(R::Loopback)),
            ("::ffff:10.1.2.3", Some(R::Private)),
            ("::ffff:169.254.169.254", Some(R::LinkLocal)),
            ("::ffff:8.8.8.8", None),
            ("::ffff:0:10.0.0.1", Some(R::Ipv4Compatible)),
            ("::8.8.8.8", Some(R::Ipv4Compatible)),
            ("::127.0.0.1", Some(R::Ipv4Compatible)),
            ("64:ff9b::10.0.0.1", Some(R::Private)),
            ("64:ff9b::127.0.0.1", Some(R::Loopback)),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::1", Some(R::LocalUseNat64)),
            ("100::1", Some(R::DiscardOnly)),
            ("2001::1", Some(R::IetfProtocolAssignment)),
            ("2001:1ff::1", Some(R::IetfProtocolAssignment)),
            ("2001:200::1", None),
            ("2001:db8::1", Some(R::Documentation)),
            ("3fff::1", Some(R::Documentation)),
            ("3fff:fff::1", Some(R::Documentation)),
            ("3fff:1000::1", None),
            ("2002:0a00:0001::1", Some(R::Private)),
            ("2002:7f00:0001::1", Some(R::Loopback)),
            ("2002:0808:0808::1", None),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
            ("fc00::1", Some(R::UniqueLocal)),
            ("fd12:3456::1", Some(R::UniqueLocal)),
            ("fe80::1", Some(R::LinkLocal)),
            ("febf::1", Some(R::LinkLocal)),
            ("fec0::1", Some(R::SiteLocal)),
            ("ff02::1", Some(R::Multicast)),
            ("5f00::1", Some(R::Srv6Sid)),
            ("4000::1", Some(R::Reserved)),
            ("1::1", Some(R::Reserved)),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn loopback_destination_excludes_tunnelled_forms() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback_destination(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["64:ff9b::127.0.0.1", "2002:7f00:1::1", "::127.0.0.1", "10.0.0.1"] {
            assert!(!is_loopback_destination(ip.parse().expect("ip")), "{ip}");
        }
    }
}
