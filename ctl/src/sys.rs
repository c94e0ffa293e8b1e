//! The only module of emtunctl with `unsafe`: the FreeBSD backends of the
//! `Sysctl` and `Ifaces` traits (sysctl(3), if_nametoindex(3), SIOCGIFCAP /
//! SIOCSIFCAP, getifaddrs(3)) and geteuid(2). (The SIGINT/SIGTERM stop flag
//! comes from netmap_user::signal.)
//! Every `unsafe` block carries a `// SAFETY:` note. On other systems this
//! module only reports that FreeBSD is needed.
#![allow(unsafe_code)]

#[cfg(target_os = "freebsd")]
pub use freebsd::{euid, SysIfaces, SysSysctl};

#[cfg(target_os = "freebsd")]
mod freebsd {
    use crate::iface::{Caps, Ifaces, Link};
    use crate::sysctl::{Sysctl, SysctlError};
    use libc::{c_char, c_int, c_uint, c_ulong, c_void, size_t};
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::ptr;

    /// CTL_MAXNAME, sys/sys/sysctl.h.
    const CTL_MAXNAME: usize = 24;
    /// {CTL_SYSCTL, CTL_SYSCTL_NAME / CTL_SYSCTL_NEXT}, sys/sys/sysctl.h.
    const CTL_SYSCTL: c_int = 0;
    const CTL_SYSCTL_NAME: c_int = 1;
    const CTL_SYSCTL_NEXT: c_int = 2;

    fn errno_err() -> SysctlError {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) => SysctlError::NotFound,
            Some(libc::EPERM) | Some(libc::EACCES) => SysctlError::PermissionDenied,
            Some(libc::EINVAL) => SysctlError::Invalid,
            Some(libc::EOPNOTSUPP) => SysctlError::NotSupported,
            Some(n) => SysctlError::Os(n, e.to_string()),
            None => SysctlError::Os(0, e.to_string()),
        }
    }

    fn cname(name: &str) -> Result<CString, SysctlError> {
        CString::new(name).map_err(|_| SysctlError::NotFound)
    }

    /// sysctlbyname read into `buf`; returns the number of bytes the kernel wrote.
    fn read_by_name(name: &CStr, buf: &mut [u8]) -> Result<usize, SysctlError> {
        let mut len: size_t = buf.len();
        // SAFETY: `name` is NUL-terminated; `buf` is valid for `len` bytes of
        // writes and the kernel writes at most `len` bytes, storing the count
        // back in `len`; no new value is given (null, 0).
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                buf.as_mut_ptr().cast::<c_void>(),
                &mut len,
                ptr::null(),
                0,
            )
        };
        if rc != 0 {
            return Err(errno_err());
        }
        Ok(len)
    }

    /// Size the kernel would return for `name`.
    fn size_by_name(name: &CStr) -> Result<usize, SysctlError> {
        let mut len: size_t = 0;
        // SAFETY: a null old pointer asks only for the size, written to `len`.
        let rc =
            unsafe { libc::sysctlbyname(name.as_ptr(), ptr::null_mut(), &mut len, ptr::null(), 0) };
        if rc != 0 {
            return Err(errno_err());
        }
        Ok(len)
    }

    /// sysctl(3) by MIB into `buf`; returns the byte count.
    fn read_by_mib(mib: &[c_int], buf: &mut [u8]) -> Result<usize, SysctlError> {
        let mut len: size_t = buf.len();
        // SAFETY: `mib` is valid for `mib.len()` ints (at most CTL_MAXNAME + 2,
        // which fits c_uint); `buf` is valid for `len` bytes of writes; no new value.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                mib.len() as c_uint,
                buf.as_mut_ptr().cast::<c_void>(),
                &mut len,
                ptr::null(),
                0,
            )
        };
        if rc != 0 {
            return Err(errno_err());
        }
        Ok(len)
    }

    fn name_to_mib(name: &str) -> Result<Vec<c_int>, SysctlError> {
        let c = cname(name)?;
        let mut mib = [0 as c_int; CTL_MAXNAME];
        let mut len: size_t = mib.len();
        // SAFETY: `mib` holds `len` ints; the kernel writes at most `len`
        // entries and stores the count back in `len`.
        let rc = unsafe { libc::sysctlnametomib(c.as_ptr(), mib.as_mut_ptr(), &mut len) };
        if rc != 0 {
            return Err(errno_err());
        }
        Ok(mib[..len.min(CTL_MAXNAME)].to_vec())
    }

    /// The OID after `oid` in the tree ({0, 2, oid...}), None at the end.
    fn next_oid(oid: &[c_int]) -> Result<Option<Vec<c_int>>, SysctlError> {
        let mut q = vec![CTL_SYSCTL, CTL_SYSCTL_NEXT];
        q.extend_from_slice(oid);
        let mut buf = [0u8; CTL_MAXNAME * 4];
        match read_by_mib(&q, &mut buf) {
            Ok(n) => Ok(Some(
                buf[..n]
                    .chunks_exact(4)
                    .map(|b| c_int::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )),
            Err(SysctlError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Dotted name of an OID ({0, 1, oid...}).
    fn oid_name(oid: &[c_int]) -> Result<String, SysctlError> {
        let mut q = vec![CTL_SYSCTL, CTL_SYSCTL_NAME];
        q.extend_from_slice(oid);
        let mut buf = vec![0u8; 1024];
        let n = read_by_mib(&q, &mut buf)?;
        let s = CStr::from_bytes_until_nul(&buf[..n]).map_err(|_| SysctlError::BadString)?;
        s.to_str()
            .map(str::to_string)
            .map_err(|_| SysctlError::BadString)
    }

    /// Real sysctl tree.
    pub struct SysSysctl;

    impl Sysctl for SysSysctl {
        fn get_str(&self, name: &str) -> Result<String, SysctlError> {
            let c = cname(name)?;
            for _ in 0..4 {
                let size = size_by_name(&c)?;
                let mut buf = vec![0u8; size + 16];
                match read_by_name(&c, &mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        if let Some(z) = buf.iter().position(|&b| b == 0) {
                            buf.truncate(z);
                        }
                        return String::from_utf8(buf).map_err(|_| SysctlError::BadString);
                    }
                    // The value grew between the two calls: try again.
                    Err(SysctlError::Os(libc::ENOMEM, _)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(SysctlError::Os(libc::ENOMEM, "value keeps growing".into()))
        }

        fn get_int(&self, name: &str) -> Result<i64, SysctlError> {
            let mut buf = [0u8; 8];
            match read_by_name(&cname(name)?, &mut buf)? {
                4 => Ok(i64::from(i32::from_ne_bytes([
                    buf[0], buf[1], buf[2], buf[3],
                ]))),
                8 => Ok(i64::from_ne_bytes(buf)),
                n => Err(SysctlError::BadSize(n)),
            }
        }

        fn get_u64(&self, name: &str) -> Result<u64, SysctlError> {
            let mut buf = [0u8; 8];
            match read_by_name(&cname(name)?, &mut buf)? {
                4 => Ok(u64::from(u32::from_ne_bytes([
                    buf[0], buf[1], buf[2], buf[3],
                ]))),
                8 => Ok(u64::from_ne_bytes(buf)),
                n => Err(SysctlError::BadSize(n)),
            }
        }

        fn set_int(&self, name: &str, value: i64) -> Result<(), SysctlError> {
            // int and uint sysctls both take 4 bytes.
            if value < i64::from(i32::MIN) || value > i64::from(u32::MAX) {
                return Err(SysctlError::Invalid);
            }
            let bytes = (value as u32).to_ne_bytes();
            let c = cname(name)?;
            // SAFETY: `c` is NUL-terminated; the new value points to 4 valid
            // bytes that outlive the call; no old value is requested (null).
            let rc = unsafe {
                libc::sysctlbyname(
                    c.as_ptr(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    bytes.as_ptr().cast::<c_void>(),
                    bytes.len(),
                )
            };
            if rc != 0 {
                return Err(errno_err());
            }
            Ok(())
        }

        fn children(&self, name: &str) -> Result<Vec<String>, SysctlError> {
            let base = name_to_mib(name)?;
            let prefix = format!("{name}.");
            let mut out: Vec<String> = Vec::new();
            let mut cur = base.clone();
            // Walk the leaves below `base` in OID order.
            while let Some(next) = next_oid(&cur)? {
                if next.len() <= base.len() || !next.starts_with(&base) {
                    break;
                }
                let full = oid_name(&next)?;
                if let Some(child) = full.strip_prefix(&prefix).and_then(|r| r.split('.').next()) {
                    if out.last().map(String::as_str) != Some(child) {
                        out.push(child.to_string());
                    }
                }
                cur = next;
            }
            out.dedup();
            Ok(out)
        }

        fn exists(&self, name: &str) -> bool {
            name_to_mib(name).is_ok()
        }

        fn proc_name(&self, pid: i32) -> Option<String> {
            let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_ARGS, pid];
            let mut buf = vec![0u8; 4096];
            let n = read_by_mib(&mib, &mut buf).ok()?;
            let argv0 = CStr::from_bytes_until_nul(&buf[..n]).ok()?.to_str().ok()?;
            let base = argv0.rsplit('/').next().unwrap_or(argv0);
            (!base.is_empty()).then(|| base.to_string())
        }
    }

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
            let c = CString::new(name).ok()?;
            // SAFETY: `c` is NUL-terminated and only read.
            let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
            (i != 0).then_some(i)
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
            let mut head: *mut libc::ifaddrs = ptr::null_mut();
            // SAFETY: on success getifaddrs stores a list head in `head`,
            // which is freed once below.
            if unsafe { libc::getifaddrs(&mut head) } != 0 {
                return Link::Unknown;
            }
            let mut link = Link::Unknown;
            let mut p = head;
            while !p.is_null() {
                // SAFETY: `p` is a node of the list from getifaddrs, valid
                // until freeifaddrs.
                let ifa = unsafe { &*p };
                p = ifa.ifa_next;
                if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() || ifa.ifa_data.is_null() {
                    continue;
                }
                // SAFETY: non-null pointers into the same list: a NUL-terminated
                // name and a sockaddr.
                let (ifname, family) = unsafe {
                    (
                        CStr::from_ptr(ifa.ifa_name),
                        c_int::from((*ifa.ifa_addr).sa_family),
                    )
                };
                if family != libc::AF_LINK || ifname.to_bytes() != name.as_bytes() {
                    continue;
                }
                if ifa.ifa_flags & (libc::IFF_UP as c_uint) == 0 {
                    link = Link::AdminDown;
                    break;
                }
                // SAFETY: for AF_LINK entries ifa_data points to a struct
                // if_data, whose byte 4 is ifi_link_state (sys/net/if.h).
                let state = unsafe { *ifa.ifa_data.cast::<u8>().add(4) };
                link = match state {
                    2 => Link::Up,
                    1 => Link::Down,
                    _ => Link::Unknown,
                };
                break;
            }
            // SAFETY: `head` came from a successful getifaddrs, freed once.
            unsafe { libc::freeifaddrs(head) };
            link
        }
    }

    /// Effective uid.
    pub fn euid() -> u32 {
        // SAFETY: geteuid(2) cannot fail and touches no memory of ours.
        unsafe { libc::geteuid() }
    }
}
