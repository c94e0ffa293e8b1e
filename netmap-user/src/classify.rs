//! Which frames the application claims: by EtherType, looking through VLAN tags.

use std::fmt;
use std::str::FromStr;

/// An Ethernet II type (>= 0x0600; smaller values are 802.3 lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    pub const VLAN: EtherType = EtherType(0x8100);
    pub const QINQ: EtherType = EtherType(0x88a8);
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// The seed's signalling type (IEEE local experimental 1).
    pub const EMTUN_SIGNAL: EtherType = EtherType(0x88b5);
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad EtherType {0:?}: expected 0x0600..=0xffff, e.g. 0x88b5")]
pub struct BadEtherType(pub String);

impl FromStr for EtherType {
    type Err = BadEtherType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u16::from_str_radix(hex, 16),
            None => t.parse::<u16>(),
        };
        match v {
            Ok(v) if v >= 0x0600 => Ok(EtherType(v)),
            _ => Err(BadEtherType(s.to_string())),
        }
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

fn is_tag(t: u16) -> bool {
    matches!(t, 0x8100 | 0x88a8 | 0x9100)
}

impl ClaimSet {
    pub fn insert(&mut self, t: EtherType) {
        if !self.contains(t) {
            self.count += 1;
        }
        self.bits[usize::from(t.0 >> 6)] |= 1 << (t.0 & 63);
    }

    pub fn contains(&self, t: EtherType) -> bool {
        self.bits[usize::from(t.0 >> 6)] & (1 << (t.0 & 63)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn iter(&self) -> impl Iterator<Item = EtherType> + '_ {
        (0..=u16::MAX).map(EtherType).filter(|t| self.contains(*t))
    }

    /// Classifies an Ethernet frame. A claimed tag type (0x8100) claims every
    /// frame tagged with it; otherwise up to two tags are looked through.
    pub fn classify(&self, frame: &[u8]) -> Class {
        if frame.len() < ETH_HLEN {
            return Class::Runt;
        }
        let mut off = 12;
        for depth in 0..=MAX_TAGS {
            let t = EtherType(u16::from_be_bytes([frame[off], frame[off + 1]]));
            if self.count != 0 && self.contains(t) {
                return Class::App(t);
            }
            if !is_tag(t.0) || depth == MAX_TAGS {
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
    fn parses_hex_and_decimal_and_rejects_lengths() {
        assert_eq!("0x88b5".parse::<EtherType>(), Ok(EtherType(0x88b5)));
        assert_eq!("0X0800".parse::<EtherType>(), Ok(EtherType::IPV4));
        assert_eq!("2054".parse::<EtherType>(), Ok(EtherType::ARP));
        assert!("0x05dc".parse::<EtherType>().is_err());
        assert!("0x1_0000".parse::<EtherType>().is_err());
        assert!("ip".parse::<EtherType>().is_err());
    }

    #[test]
    fn claims_plain_and_vlan_tagged_frames() {
        let mut c = ClaimSet::default();
        c.insert(EtherType::EMTUN_SIGNAL);
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
    fn claiming_a_tag_type_claims_all_tagged_frames() {
        let mut c = ClaimSet::default();
        c.insert(EtherType::VLAN);
        assert_eq!(
            c.classify(&eth(&[0x8100, 0x0800])),
            Class::App(EtherType::VLAN)
        );
        assert_eq!(c.classify(&eth(&[0x0800])), Class::Kernel);
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
