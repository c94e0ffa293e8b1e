//! The FreeBSD kernel backend: /dev/netmap, NIOCCTRL, mmap and the syncs.
//!
//! Registration binds every hardware and host ring (`NR_REG_NIC_SW`)
//! exclusively. The descriptor is close-on-exec and the mapping is not
//! inherited across fork(2): a stray child or leaked mapping must never keep
//! the NIC in netmap mode after the owner dies.

use std::io;
use std::time::Duration;

use crate::error::Error;
use crate::port::{Backend, Port, Sealed};

/// The kernel's side of a real netmap port.
pub struct Kernel {
    inner: imp::Inner,
}

impl Sealed for Kernel {}

impl Backend for Kernel {
    fn txsync(&mut self) -> io::Result<()> {
        self.inner.ioctl_sync(true)
    }
    fn rxsync(&mut self) -> io::Result<()> {
        self.inner.ioctl_sync(false)
    }
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        self.inner.wait(timeout)
    }
}

/// Checks an interface name the way the kernel will: 1..=15 bytes, no NUL.
pub(crate) fn check_name(ifname: &str) -> Result<(), Error> {
    if ifname.is_empty() || ifname.len() >= 16 || ifname.bytes().any(|b| b == 0 || b == b'/') {
        return Err(Error::BadName(ifname.to_string()));
    }
    Ok(())
}

impl Port<Kernel> {
    /// Registers `ifname` (hardware and host rings, exclusively) and maps it.
    pub fn open(ifname: &str) -> Result<Port<Kernel>, Error> {
        check_name(ifname)?;
        let (inner, base, len, nifp_off) = imp::Inner::register(ifname)?;
        // SAFETY: the mapping [base, base + len) lives as long as `inner`,
        // which the port owns; the kernel writes it only during our syscalls.
        unsafe { Port::from_region(Kernel { inner }, ifname, base, len, nifp_off) }
    }
}

/// Whether `dev.netmap.fwd` makes the kernel forward released RX slots.
pub(crate) fn kernel_forwarding() -> bool {
    imp::kernel_forwarding()
}

/// The link-layer address of `ifname`, where the OS can tell.
pub fn hw_addr(ifname: &str) -> Option<[u8; 6]> {
    imp::hw_addr(ifname)
}

#[cfg(target_os = "freebsd")]
mod imp {
    use core::ptr::NonNull;
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    use crate::error::Error;
    use crate::ffi::{self, nmreq_header, nmreq_register};

    pub(super) struct Inner {
        fd: OwnedFd,
        base: NonNull<u8>,
        len: usize,
    }

    fn errno() -> io::Error {
        io::Error::last_os_error()
    }

    impl Inner {
        pub(super) fn register(ifname: &str) -> Result<(Inner, NonNull<u8>, usize, usize), Error> {
            let cname = CString::new(ifname).map_err(|_| Error::BadName(ifname.into()))?;
            // SAFETY: cname is a valid NUL-terminated string.
            if unsafe { libc::if_nametoindex(cname.as_ptr()) } == 0 {
                return Err(Error::NoSuchInterface(ifname.into()));
            }
            // SAFETY: a plain open(2) of a constant path.
            let raw =
                unsafe { libc::open(c"/dev/netmap".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
            if raw < 0 {
                let e = errno();
                return Err(match e.raw_os_error() {
                    Some(libc::ENOENT) | Some(libc::ENXIO) => Error::NoNetmap,
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        Error::PermissionDenied(ifname.into())
                    }
                    _ => Error::io("open /dev/netmap", e),
                });
            }
            // SAFETY: raw is a descriptor we just opened and own.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };

            let mut reg = nmreq_register {
                nr_mode: ffi::NR_REG_NIC_SW,
                nr_flags: ffi::NR_EXCLUSIVE,
                ..Default::default()
            };
            let mut hdr = nmreq_header {
                nr_version: ffi::NETMAP_API,
                nr_reqtype: ffi::NETMAP_REQ_REGISTER,
                nr_reserved: 0,
                nr_name: [0; 64],
                nr_options: 0,
                nr_body: &mut reg as *mut nmreq_register as u64,
            };
            hdr.nr_name[..ifname.len()].copy_from_slice(ifname.as_bytes());
            // SAFETY: NIOCCTRL takes a struct nmreq_header whose nr_body
            // points at a live nmreq_register; both outlive the call.
            let rc = unsafe {
                libc::ioctl(
                    fd.as_raw_fd(),
                    ffi::NIOCCTRL as libc::c_ulong,
                    &mut hdr as *mut nmreq_header,
                )
            };
            if rc < 0 {
                let e = errno();
                return Err(match e.raw_os_error() {
                    Some(libc::EBUSY) => Error::Busy(ifname.into()),
                    Some(libc::ENXIO) | Some(libc::ENODEV) => Error::NoSuchInterface(ifname.into()),
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        Error::PermissionDenied(ifname.into())
                    }
                    Some(libc::EINVAL) => Error::ApiMismatch {
                        ours: ffi::NETMAP_API,
                    },
                    _ => Error::io(&format!("NIOCCTRL register {ifname}"), e),
                });
            }
            let len = reg.nr_memsize as usize;
            let nifp_off = reg.nr_offset as usize;
            // SAFETY: mapping the netmap region the registration just sized.
            let p = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(Error::io("mmap /dev/netmap", errno()));
            }
            let Some(base) = NonNull::new(p.cast::<u8>()) else {
                return Err(Error::Layout("mmap returned NULL".into()));
            };
            let inner = Inner { fd, base, len };
            // SAFETY: [p, p + len) is the mapping we just made.
            if unsafe { libc::minherit(p, len, libc::INHERIT_NONE) } != 0 {
                return Err(Error::io("minherit(INHERIT_NONE)", errno()));
            }
            if nifp_off + core::mem::size_of::<ffi::netmap_if>() > len {
                return Err(Error::Layout(format!(
                    "nr_offset {nifp_off} beyond nr_memsize {len}"
                )));
            }
            // No ni_version check: FreeBSD 14 never writes it (netmap.h:
            // "currently unused"); the kernel already checked nr_version.
            Ok((inner, base, len, nifp_off))
        }

        pub(super) fn ioctl_sync(&mut self, tx: bool) -> io::Result<()> {
            let req = if tx { ffi::NIOCTXSYNC } else { ffi::NIOCRXSYNC };
            // SAFETY: NIOC*SYNC take no argument.
            if unsafe { libc::ioctl(self.fd.as_raw_fd(), req as libc::c_ulong) } < 0 {
                return Err(errno());
            }
            Ok(())
        }

        pub(super) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(core::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: one valid pollfd; tsp is null or points at a live timespec.
            let rc = unsafe { libc::ppoll(&mut pfd, 1, tsp, core::ptr::null()) };
            if rc < 0 {
                let e = errno();
                return if e.raw_os_error() == Some(libc::EINTR) {
                    Ok(true)
                } else {
                    Err(e)
                };
            }
            Ok(pfd.revents & (libc::POLLERR | libc::POLLNVAL) == 0)
        }
    }

    impl Drop for Inner {
        fn drop(&mut self) {
            // SAFETY: unmapping exactly the region mapped in register(); the
            // port that used it is being dropped. The fd closes afterwards.
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
        }
    }

    pub(super) fn kernel_forwarding() -> bool {
        let mut v: libc::c_int = 0;
        let mut len = core::mem::size_of::<libc::c_int>();
        // SAFETY: reading an int sysctl into a local of the right size.
        let rc = unsafe {
            libc::sysctlbyname(
                c"dev.netmap.fwd".as_ptr(),
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
                core::ptr::null(),
                0,
            )
        };
        rc == 0 && v != 0
    }

    pub(super) fn hw_addr(ifname: &str) -> Option<[u8; 6]> {
        let mut ifap: *mut libc::ifaddrs = core::ptr::null_mut();
        // SAFETY: getifaddrs fills ifap with a list we free below.
        if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
            return None;
        }
        let mut found = None;
        let mut p = ifap;
        while !p.is_null() {
            // SAFETY: p walks the list getifaddrs returned; each sockaddr of
            // family AF_LINK is a sockaddr_dl whose data holds name then MAC.
            unsafe {
                let ifa = &*p;
                let name = std::ffi::CStr::from_ptr(ifa.ifa_name);
                if !ifa.ifa_addr.is_null()
                    && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_LINK
                    && name.to_bytes() == ifname.as_bytes()
                {
                    let sdl = &*ifa.ifa_addr.cast::<libc::sockaddr_dl>();
                    if sdl.sdl_alen == 6 {
                        let data = sdl
                            .sdl_data
                            .as_ptr()
                            .cast::<u8>()
                            .add(sdl.sdl_nlen as usize);
                        let mut mac = [0u8; 6];
                        core::ptr::copy_nonoverlapping(data, mac.as_mut_ptr(), 6);
                        found = Some(mac);
                    }
                }
                p = ifa.ifa_next;
            }
        }
        // SAFETY: ifap came from getifaddrs.
        unsafe { libc::freeifaddrs(ifap) };
        found
    }
}

#[cfg(not(target_os = "freebsd"))]
mod imp {
    use core::ptr::NonNull;
    use std::io;
    use std::time::Duration;

    use crate::error::Error;

    /// Uninhabited: no kernel netmap port can exist off FreeBSD.
    pub(super) enum Inner {}

    impl Inner {
        pub(super) fn register(_ifname: &str) -> Result<(Inner, NonNull<u8>, usize, usize), Error> {
            Err(Error::Unsupported)
        }
        pub(super) fn ioctl_sync(&mut self, _tx: bool) -> io::Result<()> {
            match *self {}
        }
        pub(super) fn wait(&mut self, _t: Option<Duration>) -> io::Result<bool> {
            match *self {}
        }
    }

    pub(super) fn hw_addr(_ifname: &str) -> Option<[u8; 6]> {
        None
    }

    pub(super) fn kernel_forwarding() -> bool {
        false
    }
}
