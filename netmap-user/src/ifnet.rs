//! What the system says about a network interface: its index, link-layer
//! address and link state, from one walk of getifaddrs(3).

use crate::ifname::IfName;

/// Link state (`if_data.ifi_link_state` and `IFF_UP`, `sys/net/if.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `LINK_STATE_UP`.
    Up,
    /// `LINK_STATE_DOWN`: no carrier.
    Down,
    /// The interface is administratively down (`ifconfig IFACE down`).
    AdminDown,
    /// `LINK_STATE_UNKNOWN`, or the system could not tell.
    Unknown,
}

impl Link {
    /// `up`, `down`, `admin-down` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Up => "up",
            Link::Down => "down",
            Link::AdminDown => "admin-down",
            Link::Unknown => "unknown",
        }
    }
}

/// An interface as getifaddrs(3) reports its `AF_LINK` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfInfo {
    /// The 6-byte Ethernet address, if the interface has one.
    pub mac: Option<[u8; 6]>,
    /// Carrier and administrative state.
    pub link: Link,
    /// The MTU (`if_data.ifi_mtu`), if the entry carries one.
    pub mtu: Option<u32>,
}

/// The `AF_LINK` facts of `name`, or `None` when no such interface exists
/// (or off FreeBSD, where this crate reads no interface).
pub fn if_info(name: &IfName) -> Option<IfInfo> {
    imp::if_info(name.as_str())
}

/// `if_nametoindex(3)`: the interface index, `None` when there is no such
/// interface.
pub fn if_index(name: &IfName) -> Option<u32> {
    imp::if_index(name.as_str())
}

#[cfg(target_os = "freebsd")]
mod imp {
    use super::{IfInfo, Link};
    use std::ffi::{CStr, CString};

    pub(super) fn if_index(name: &str) -> Option<u32> {
        let c = CString::new(name).ok()?;
        // SAFETY: `c` is NUL-terminated and only read.
        let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
        (i != 0).then_some(i)
    }

    pub(super) fn if_info(name: &str) -> Option<IfInfo> {
        let mut head: *mut libc::ifaddrs = core::ptr::null_mut();
        // SAFETY: on success getifaddrs stores a list head in `head`, which
        // is freed once below.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            return None;
        }
        let mut found = None;
        let mut p = head;
        while !p.is_null() {
            // SAFETY: `p` is a node of the list from getifaddrs, valid until
            // freeifaddrs.
            let ifa = unsafe { &*p };
            p = ifa.ifa_next;
            if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
                continue;
            }
            // SAFETY: non-null pointers into the same list: a NUL-terminated
            // name and a sockaddr.
            let (ifname, family) = unsafe {
                (
                    CStr::from_ptr(ifa.ifa_name),
                    i32::from((*ifa.ifa_addr).sa_family),
                )
            };
            if family != libc::AF_LINK || ifname.to_bytes() != name.as_bytes() {
                continue;
            }
            // SAFETY: an AF_LINK sockaddr is a sockaddr_dl; its data holds
            // the name (sdl_nlen bytes) and then the address (sdl_alen),
            // inside the list's memory (net/if_dl.h).
            let mac = unsafe {
                let sdl = &*ifa.ifa_addr.cast::<libc::sockaddr_dl>();
                (sdl.sdl_alen == 6).then(|| {
                    let mut mac = [0u8; 6];
                    let data = sdl
                        .sdl_data
                        .as_ptr()
                        .cast::<u8>()
                        .add(sdl.sdl_nlen as usize);
                    core::ptr::copy_nonoverlapping(data, mac.as_mut_ptr(), 6);
                    mac
                })
            };
            // SAFETY: for AF_LINK entries a non-null ifa_data points to a
            // struct if_data, whose bytes 8..12 are ifi_mtu (sys/net/if.h:
            // six u_char fields, u_short ifi_datalen, then uint32_t ifi_mtu).
            let mtu = (!ifa.ifa_data.is_null()).then(|| unsafe {
                ifa.ifa_data
                    .cast::<u8>()
                    .add(8)
                    .cast::<u32>()
                    .read_unaligned()
            });
            let link = if ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) == 0 {
                Link::AdminDown
            } else if ifa.ifa_data.is_null() {
                Link::Unknown
            } else {
                // SAFETY: for AF_LINK entries ifa_data points to a struct
                // if_data, whose byte 4 is ifi_link_state (sys/net/if.h).
                match unsafe { *ifa.ifa_data.cast::<u8>().add(4) } {
                    2 => Link::Up,
                    1 => Link::Down,
                    _ => Link::Unknown,
                }
            };
            found = Some(IfInfo { mac, link, mtu });
            break;
        }
        // SAFETY: `head` came from a successful getifaddrs, freed once.
        unsafe { libc::freeifaddrs(head) };
        found
    }
}

#[cfg(not(target_os = "freebsd"))]
mod imp {
    use super::IfInfo;

    pub(super) fn if_index(_name: &str) -> Option<u32> {
        None
    }

    pub(super) fn if_info(_name: &str) -> Option<IfInfo> {
        None
    }
}
