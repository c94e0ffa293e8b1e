//! Network interfaces: existence, offload capabilities (SIOCGIFCAP /
//! SIOCSIFCAP) and link state, behind the `Ifaces` trait (real backend in
//! `sys.rs`).

use emtun::netmap_user::ifnet::Link;
use std::io;

// Interface capability bits, sys/net/if.h (FreeBSD 14).
pub const IFCAP_TXCSUM: u32 = 1 << 1;
pub const IFCAP_VLAN_HWTAGGING: u32 = 1 << 4;
pub const IFCAP_TSO4: u32 = 1 << 8;
pub const IFCAP_TSO6: u32 = 1 << 9;
pub const IFCAP_TXCSUM_IPV6: u32 = 1 << 22;

/// The offloads that break tunneled host traffic, with their ifconfig(8) names.
pub const BAD_OFFLOADS: [(u32, &str); 5] = [
    (IFCAP_TXCSUM, "txcsum"),
    (IFCAP_TXCSUM_IPV6, "txcsum6"),
    (IFCAP_TSO4, "tso4"),
    (IFCAP_TSO6, "tso6"),
    (IFCAP_VLAN_HWTAGGING, "vlanhwtag"),
];

/// Mask of all `BAD_OFFLOADS`.
pub const BAD_OFFLOAD_MASK: u32 =
    IFCAP_TXCSUM | IFCAP_TXCSUM_IPV6 | IFCAP_TSO4 | IFCAP_TSO6 | IFCAP_VLAN_HWTAGGING;

/// SIOCGIFCAP result: what the NIC supports and what is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub supported: u32,
    pub enabled: u32,
}

impl Caps {
    /// Enabled offloads among the ones that break tunneled traffic.
    pub fn bad(&self) -> u32 {
        self.enabled & BAD_OFFLOAD_MASK
    }
}

/// ifconfig names of the bad offloads set in `mask`, in a fixed order.
pub fn offload_names(mask: u32) -> Vec<&'static str> {
    BAD_OFFLOADS
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|&(_, n)| n)
        .collect()
}

/// What emtunctl needs to know about, and do to, interfaces.
pub trait Ifaces {
    /// Interface index (if_nametoindex), None if there is no such interface.
    fn index(&self, name: &str) -> Option<u32>;
    /// SIOCGIFCAP.
    fn caps(&self, name: &str) -> io::Result<Caps>;
    /// SIOCSIFCAP with the full wanted set of enabled capabilities.
    fn set_caps(&self, name: &str, enabled: u32) -> io::Result<()>;
    /// Link state.
    fn link(&self, name: &str) -> Link;
}

#[cfg(test)]
pub mod mem {
    //! In-memory interfaces for tests.

    use super::{Caps, Ifaces, Link};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::io;

    #[derive(Debug, Clone)]
    pub struct MemIface {
        pub index: u32,
        pub caps: Caps,
        pub link: Link,
        /// Capabilities the driver refuses to turn off (to test a failed fix).
        pub sticky: u32,
    }

    #[derive(Default)]
    pub struct MemIfaces {
        pub map: RefCell<BTreeMap<String, MemIface>>,
    }

    impl MemIfaces {
        pub fn add(&self, name: &str, caps: Caps, link: Link) {
            let mut m = self.map.borrow_mut();
            let index = m.len() as u32 + 1;
            m.insert(
                name.to_string(),
                MemIface {
                    index,
                    caps,
                    link,
                    sticky: 0,
                },
            );
        }
        pub fn enabled(&self, name: &str) -> u32 {
            self.map.borrow()[name].caps.enabled
        }
        pub fn set_sticky(&self, name: &str, sticky: u32) {
            if let Some(i) = self.map.borrow_mut().get_mut(name) {
                i.sticky = sticky;
            }
        }
    }

    impl Ifaces for MemIfaces {
        fn index(&self, name: &str) -> Option<u32> {
            self.map.borrow().get(name).map(|i| i.index)
        }
        fn caps(&self, name: &str) -> io::Result<Caps> {
            self.map
                .borrow()
                .get(name)
                .map(|i| i.caps)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
        fn set_caps(&self, name: &str, enabled: u32) -> io::Result<()> {
            let mut m = self.map.borrow_mut();
            let i = m
                .get_mut(name)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            // Like iflib: only supported bits change; sticky ones stay on.
            i.caps.enabled = (enabled & i.caps.supported) | (i.caps.enabled & i.sticky);
            Ok(())
        }
        fn link(&self, name: &str) -> Link {
            self.map
                .borrow()
                .get(name)
                .map(|i| i.link)
                .unwrap_or(Link::Unknown)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offload_bits_match_if_h() {
        // IFCAP_B_* bit numbers from sys/net/if.h.
        assert_eq!(IFCAP_TXCSUM, 0x2);
        assert_eq!(IFCAP_VLAN_HWTAGGING, 0x10);
        assert_eq!(IFCAP_TSO4, 0x100);
        assert_eq!(IFCAP_TSO6, 0x200);
        assert_eq!(IFCAP_TXCSUM_IPV6, 0x0040_0000);
        let c = Caps {
            supported: 0xffff_ffff,
            enabled: IFCAP_TXCSUM | IFCAP_TSO6 | 0x1, /* RXCSUM stays */
        };
        assert_eq!(c.bad(), IFCAP_TXCSUM | IFCAP_TSO6);
        assert_eq!(offload_names(c.bad()), vec!["txcsum", "tso6"]);
        assert_eq!(
            offload_names(BAD_OFFLOAD_MASK),
            vec!["txcsum", "txcsum6", "tso4", "tso6", "vlanhwtag"]
        );
    }
}
