//! EtherType arguments for `run --claim`: `0x88b5`, comma-separated, repeatable.

use std::fmt;

/// An EtherType (>= 0x0600; smaller values are 802.3 lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtherType(pub u16);

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// Lowest EtherType value; below it the field is an 802.3 length.
pub const MIN_ETHERTYPE: u16 = 0x0600;

/// VLAN tag protocol identifiers: the tunnel classifies the ethertype inside the tag.
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// Parse one EtherType: hex with a `0x` prefix.
pub fn parse(text: &str) -> Result<EtherType, String> {
    let s = text.trim();
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| format!("ethertype `{s}` must be hex with a 0x prefix, e.g. 0x88b5"))?;
    if hex.is_empty() || hex.len() > 4 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "ethertype `{s}` is not a 16-bit hex number (0x0600..0xffff)"
        ));
    }
    let v = u16::from_str_radix(hex, 16)
        .map_err(|_| format!("ethertype `{s}` is not a 16-bit hex number"))?;
    if v < MIN_ETHERTYPE {
        return Err(format!(
            "ethertype {s} is below 0x0600: values under 0x0600 are 802.3 frame lengths, not ethertypes"
        ));
    }
    if VLAN_TPIDS.contains(&v) {
        return Err(format!(
            "ethertype {s} is a VLAN tag; the tunnel looks inside VLAN tags, so claim the inner ethertype"
        ));
    }
    Ok(EtherType(v))
}

/// A warning for claims that take traffic away from the kernel stack.
pub fn warning(et: EtherType) -> Option<String> {
    let what = match et.0 {
        0x0800 => "IPv4",
        0x0806 => "ARP",
        0x86dd => "IPv6",
        _ => return None,
    };
    Some(format!(
        "claiming {et} ({what}) takes all {what} traffic away from the kernel stack on this port"
    ))
}

/// Sort and remove duplicates (`--claim 0x88b5 --claim 0x88b5,0x88b6`).
pub fn dedup(mut list: Vec<EtherType>) -> Vec<EtherType> {
    list.sort();
    list.dedup();
    list
}

/// "0x88b5, 0x88b6" or "none (pure forwarder)".
pub fn describe(list: &[EtherType]) -> String {
    if list.is_empty() {
        "none (pure forwarder)".into()
    } else {
        list.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex() {
        assert_eq!(parse("0x88b5").unwrap(), EtherType(0x88b5));
        assert_eq!(parse("0X88B5").unwrap(), EtherType(0x88b5));
        assert_eq!(parse("0x0600").unwrap(), EtherType(0x0600));
        assert_eq!(parse("0xffff").unwrap(), EtherType(0xffff));
        assert_eq!(parse("0x800").unwrap(), EtherType(0x0800));
    }

    #[test]
    fn rejects_lengths_and_malformed() {
        let e = parse("0x05ff").unwrap_err();
        assert!(e.contains("802.3"), "{e}");
        assert!(parse("0x0000").is_err());
        for bad in [
            "", "0x", "88b5", "34997", "0x1ffff", "0x88g5", "0x-1", "x88b5", "0x88b5,",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse("88b5").unwrap_err().contains("0x prefix"));
    }

    #[test]
    fn rejects_vlan_tpids() {
        for t in ["0x8100", "0x88a8", "0x9100"] {
            assert!(parse(t).unwrap_err().contains("VLAN"), "{t}");
        }
    }

    #[test]
    fn warns_on_stack_protocols() {
        assert!(warning(EtherType(0x0800)).unwrap().contains("IPv4"));
        assert!(warning(EtherType(0x0806)).unwrap().contains("ARP"));
        assert!(warning(EtherType(0x86dd)).unwrap().contains("IPv6"));
        assert_eq!(warning(EtherType(0x88b5)), None);
    }

    #[test]
    fn dedups_and_describes() {
        let l = dedup(vec![
            EtherType(0x88b6),
            EtherType(0x88b5),
            EtherType(0x88b6),
        ]);
        assert_eq!(l, vec![EtherType(0x88b5), EtherType(0x88b6)]);
        assert_eq!(describe(&l), "0x88b5, 0x88b6");
        assert_eq!(describe(&[]), "none (pure forwarder)");
    }
}
