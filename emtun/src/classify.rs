//! Which frames the application claims: by EtherType, looking through VLAN
//! tags.
//!
//! One policy for every tool: an EtherType is written in hex with `0x`
//! (`0x88b5`) or in decimal (`34997`), is at least 0x0600 (IEEE 802.3:
//! smaller values are frame lengths), and is never a VLAN tag protocol
//! identifier (0x8100, 0x88a8, 0x9100): the classifier looks inside up to
//! two tags, so the inner EtherType is what is claimed.

use std::fmt;
use std::str::FromStr;

/// An Ethernet II type field (IEEE 802.3 clause 3.2.6), host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP.
    pub const ARP: EtherType = EtherType(0x0806);
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// IEEE 802.1ad service tag (QinQ).
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// IPv6.
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// The signalling type of the emtun examples (IEEE 802 local
    /// experimental EtherType 1).
    pub const EMTUN_SIGNAL: EtherType = EtherType(0x88b5);
    /// Smallest EtherType; below it the field is an 802.3 length.
    pub const MIN: u16 = 0x0600;
    /// Tag protocol identifiers the classifier looks through.
    pub const TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

    /// Whether this is a VLAN tag protocol identifier.
    pub fn is_tpid(self) -> bool {
        Self::TPIDS.contains(&self.0)
    }

    /// The stack protocol this type carries, when claiming it would take
    /// the kernel's own traffic away (IPv4, ARP, IPv6).
    pub fn stack_protocol(self) -> Option<&'static str> {
        match self.0 {
            0x0800 => Some("IPv4"),
            0x0806 => Some("ARP"),
            0x86dd => Some("IPv6"),
            _ => None,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// Why an EtherType cannot be claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// Neither `0x` hex nor decimal, or more than 16 bits.
    #[error("ethertype `{0}` is not a 16-bit number: write it in hex with 0x (e.g. 0x88b5) or in decimal")]
    Syntax(String),
    /// Below 0x0600: an IEEE 802.3 length, not a type.
    #[error("ethertype {0} is below 0x0600: values under 0x0600 are 802.3 frame lengths, not ethertypes")]
    Length(String),
    /// A VLAN tag protocol identifier.
    #[error("ethertype {0} is a VLAN tag; the tunnel looks inside VLAN tags, so claim the inner ethertype")]
    Tag(EtherType),
}

impl FromStr for EtherType {
    type Err = ClaimError;

    /// Parses and checks a claimable EtherType (see the module docs).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u16::from_str_radix(hex, 16)
            }
            Some(_) => return Err(ClaimError::Syntax(t.to_string())),
            None if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.parse::<u16>(),
            None => return Err(ClaimError::Syntax(t.to_string())),
        }
        .map_err(|_| ClaimError::Syntax(t.to_string()))?;
        let et = EtherType(v);
        check_claim(et).map_err(|e| match e {
            ClaimError::Length(_) => ClaimError::Length(t.to_string()),
            e => e,
        })?;
        Ok(et)
    }
}

fn check_claim(t: EtherType) -> Result<(), ClaimError> {
    if t.0 < EtherType::MIN {
        Err(ClaimError::Length(t.to_string()))
    } else if t.is_tpid() {
        Err(ClaimError::Tag(t))
    } else {
        Ok(())
    }
}

/// What the engine does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The application claimed this EtherType (the innermost seen).
    App(EtherType),
    /// Everything else belongs to the kernel stack.
    Kernel,
    /// Too short to carry the headers it announces.
    Runt,
}

const ETH_HLEN: usize = 14;
const MAX_TAGS: usize = 2;

/// A set of claimed EtherTypes with O(1) lookup.
#[derive(Clone)]
pub struct ClaimSet {
    bits: Box<[u64; 1024]>,
    count: usize,
}

impl Default for ClaimSet {
    fn default() -> Self {
        ClaimSet {
            bits: Box::new([0; 1024]),
            count: 0,
        }
    }
}

impl fmt::Debug for ClaimSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl ClaimSet {
    /// Claims `t`.
    ///
    /// # Errors
    /// [`ClaimError`] for lengths and tag identifiers (the module's policy).
    pub fn insert(&mut self, t: EtherType) -> Result<(), ClaimError> {
        check_claim(t)?;
        if !self.contains(t) {
            self.count += 1;
        }
        self.bits[usize::from(t.0 >> 6)] |= 1 << (t.0 & 63);
        Ok(())
    }

    /// Whether `t` is claimed.
    pub fn contains(&self, t: EtherType) -> bool {
        self.bits[usize::from(t.0 >> 6)] & (1 << (t.0 & 63)) != 0
    }

    /// Whether nothing is claimed: a pure forwarder.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of claimed types.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The claimed types, ascending.
    pub fn iter(&self) -> impl Iterator<Item = EtherType> + '_ {
        (0..=u16::MAX).map(EtherType).filter(|t| self.contains(*t))
    }

    /// Warnings for claims that take the kernel's own traffic away.
    pub fn warnings(&self) -> Vec<String> {
        self.iter()
            .filter_map(|t| {
                t.stack_protocol().map(|what| {
                    format!("claiming {t} ({what}) takes all {what} traffic away from the kernel stack on this port")
                })
            })
            .collect()
    }

    /// `0x88b5, 0x88b6`, or `none (pure forwarder)`.
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "none (pure forwarder)".into();
        }
        self.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Classifies an Ethernet frame, looking through up to two VLAN tags
    /// for the innermost EtherType.
    pub fn classify(&self, frame: &[u8]) -> Class {
        if frame.len() < ETH_HLEN {
            return Class::Runt;
        }
        let mut off = 12;
        for depth in 0..=MAX_TAGS {
            let t = EtherType(u16::from_be_bytes([frame[off], frame[off + 1]]));
            if !t.is_tpid() {
                return if self.count != 0 && self.contains(t) {
                    Class::App(t)
                } else {
                    Class::Kernel
                };
            }
            if depth == MAX_TAGS {
                return Class::Kernel;
            }
            off += 4;
            if frame.len() < off + 2 {
                return Class::Runt;
            }
        }
        Class::Kernel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(types: &[u16]) -> Vec<u8> {
        let mut f = vec![0xff; 12];
        for (i, t) in types.iter().enumerate() {
            f.extend_from_slice(&t.to_be_bytes());
            if i + 1 < types.len() {
                f.extend_from_slice(&[0x00, 0x05]); // TCI of the tag
            }
        }
        f.resize(f.len().max(60), 0);
        f
    }

    #[test]
    fn parses_hex_and_decimal_and_rejects_lengths_and_tags() {
        assert_eq!("0x88b5".parse::<EtherType>(), Ok(EtherType(0x88b5)));
        assert_eq!("0X0800".parse::<EtherType>(), Ok(EtherType::IPV4));
        assert_eq!("0x800".parse::<EtherType>(), Ok(EtherType::IPV4));
        assert_eq!("2054".parse::<EtherType>(), Ok(EtherType::ARP));
        assert_eq!(" 34997 ".parse::<EtherType>(), Ok(EtherType(0x88b5)));
        let e = "0x05dc".parse::<EtherType>().unwrap_err();
        assert!(e.to_string().contains("802.3"), "{e}");
        for t in ["0x8100", "0x88a8", "0x9100", "33024"] {
            let e = t.parse::<EtherType>().unwrap_err();
            assert!(matches!(e, ClaimError::Tag(_)), "{t}: {e}");
            assert!(e.to_string().contains("VLAN"), "{e}");
        }
        for bad in [
            "", "0x", "0x1ffff", "0x88g5", "0x-1", "x88b5", "0x88b5,", "ip", "65536", "-1",
        ] {
            assert!(
                matches!(bad.parse::<EtherType>(), Err(ClaimError::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_claim_set_applies_the_same_policy() {
        let mut c = ClaimSet::default();
        assert!(matches!(c.insert(EtherType::VLAN), Err(ClaimError::Tag(_))));
        assert!(matches!(
            c.insert(EtherType(0x05dc)),
            Err(ClaimError::Length(_))
        ));
        c.insert(EtherType(0x88b6)).unwrap();
        c.insert(EtherType(0x88b5)).unwrap();
        c.insert(EtherType(0x88b5)).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.describe(), "0x88b5, 0x88b6");
        assert_eq!(ClaimSet::default().describe(), "none (pure forwarder)");
        assert!(c.warnings().is_empty());
        c.insert(EtherType::ARP).unwrap();
        assert!(c.warnings()[0].contains("ARP"));
    }

    #[test]
    fn claims_plain_and_vlan_tagged_frames() {
        let mut c = ClaimSet::default();
        c.insert(EtherType::EMTUN_SIGNAL).unwrap();
        assert_eq!(c.classify(&eth(&[0x88b5])), Class::App(EtherType(0x88b5)));
        assert_eq!(
            c.classify(&eth(&[0x8100, 0x88b5])),
            Class::App(EtherType(0x88b5))
        );
        assert_eq!(
            c.classify(&eth(&[0x88a8, 0x8100, 0x88b5])),
            Class::App(EtherType(0x88b5))
        );
        assert_eq!(c.classify(&eth(&[0x0800])), Class::Kernel);
        assert_eq!(c.classify(&eth(&[0x8100, 0x0806])), Class::Kernel);
        // Three tags deep is beyond what we look through.
        assert_eq!(
            c.classify(&eth(&[0x8100, 0x8100, 0x8100, 0x88b5])),
            Class::Kernel
        );
    }

    #[test]
    fn runts_are_recognised() {
        let c = ClaimSet::default();
        assert_eq!(c.classify(&[0u8; 13]), Class::Runt);
        let mut tagged = vec![0u8; 12];
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        assert_eq!(c.classify(&tagged), Class::Runt);
        assert_eq!(c.classify(&[0u8; 14]), Class::Kernel);
    }

    #[test]
    fn empty_set_sends_everything_to_the_kernel() {
        let c = ClaimSet::default();
        assert!(c.is_empty());
        assert_eq!(c.classify(&eth(&[0x88b5])), Class::Kernel);
    }
}
