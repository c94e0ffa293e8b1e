//! The only module of emtunctl with `unsafe`: the FreeBSD backend of the
//! `Ifaces` trait (SIOCGIFCAP / SIOCSIFCAP) and geteuid(2). sysctl(3),
//! getifaddrs(3) and if_nametoindex(3) come from netmap_user, the SIGINT /
//! SIGTERM stop flag from emtun::signal.
//! Every `unsafe` block carries a `// SAFETY:` note. On other systems this
//! module only reports that FreeBSD is needed.
#![allow(unsafe_code)]

#[cfg(target_os = "freebsd")]
pub use freebsd::{euid, SysIfaces};

#[cfg(target_os = "freebsd")]
mod freebsd {
    use crate::iface::{Caps, Ifaces};
    use emtun::netmap_user::ifnet::{if_index, if_info, Link};
    use emtun::IfName;
    use libc::{c_char, c_int, c_ulong};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// struct ifreq with the `ifru_cap` member (sys/net/if.h): 16-byte name,
    /// then a 16-byte union.
    #[repr(C)]
    struct IfReqCap {
        name: [c_char; 16],
        /// ifr_reqcap, ifr_curcap
        cap: [c_int; 2],
        _rest: [u8; 8],
    }
    const _: () = assert!(std::mem::size_of::<IfReqCap>() == 32);

    /// _IOC(inout, group, num, len), sys/sys/ioccom.h.
    const fn ioc(inout: c_ulong, group: u8, num: u8, len: usize) -> c_ulong {
        inout | (((len as c_ulong) & 0x1fff) << 16) | ((group as c_ulong) << 8) | num as c_ulong
    }
    const IOC_IN: c_ulong = 0x8000_0000;
    const IOC_INOUT: c_ulong = 0xc000_0000;
    /// _IOW('i', 30, struct ifreq)
    const SIOCSIFCAP: c_ulong = ioc(IOC_IN, b'i', 30, std::mem::size_of::<IfReqCap>());
    /// _IOWR('i', 31, struct ifreq)
    const SIOCGIFCAP: c_ulong = ioc(IOC_INOUT, b'i', 31, std::mem::size_of::<IfReqCap>());
    const _: () = assert!(SIOCSIFCAP == 0x8020_691e);
    const _: () = assert!(SIOCGIFCAP == 0xc020_691f);

    fn ifreq(name: &str) -> io::Result<IfReqCap> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= 16 || bytes.contains(&0) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut r = IfReqCap {
            name: [0; 16],
            cap: [0; 2],
            _rest: [0; 8],
        };
        for (d, s) in r.name.iter_mut().zip(bytes) {
            *d = *s as c_char;
        }
        Ok(r)
    }

    fn socket() -> io::Result<OwnedFd> {
        for family in [libc::AF_INET, libc::AF_LOCAL] {
            // SAFETY: plain socket(2) call with constant arguments.
            let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            if fd >= 0 {
                // SAFETY: `fd` is a fresh descriptor that nothing else owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        Err(io::Error::last_os_error())
    }

    fn cap_ioctl(req: c_ulong, r: &mut IfReqCap) -> io::Result<()> {
        let s = socket()?;
        // SAFETY: `r` is a properly sized struct ifreq (32 bytes, asserted
        // above) that lives across the call; the kernel copies it in and, for
        // SIOCGIFCAP, out again.
        let rc = unsafe { libc::ioctl(s.as_raw_fd(), req, r as *mut IfReqCap) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Real interfaces.
    pub struct SysIfaces;

    impl Ifaces for SysIfaces {
        fn index(&self, name: &str) -> Option<u32> {
            if_index(&IfName::new(name).ok()?)
        }

        fn caps(&self, name: &str) -> io::Result<Caps> {
            let mut r = ifreq(name)?;
            cap_ioctl(SIOCGIFCAP, &mut r)?;
            Ok(Caps {
                supported: r.cap[0] as u32,
                enabled: r.cap[1] as u32,
            })
        }

        fn set_caps(&self, name: &str, enabled: u32) -> io::Result<()> {
            let mut r = ifreq(name)?;
            r.cap[0] = enabled as c_int;
            cap_ioctl(SIOCSIFCAP, &mut r)
        }

        fn link(&self, name: &str) -> Link {
            IfName::new(name)
                .ok()
                .and_then(|n| if_info(&n))
                .map_or(Link::Unknown, |i| i.link)
        }
    }

    /// Effective uid.
    pub fn euid() -> u32 {
        // SAFETY: geteuid(2) cannot fail and touches no memory of ours.
        unsafe { libc::geteuid() }
    }
}
