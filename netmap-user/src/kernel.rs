//! The FreeBSD kernel backend: /dev/netmap, NIOCCTRL, mmap and the syncs.
//!
//! Registration binds every hardware and host ring (`NR_REG_NIC_SW`)
//! exclusively. The descriptor is close-on-exec and the mapping is not
//! inherited across fork(2): a stray child or leaked mapping must never keep
//! the NIC in netmap mode after the owner dies.

use std::io;
use std::time::Duration;

use crate::error::Error;
use crate::ifname::IfName;
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

impl Port<Kernel> {
    /// Registers `ifname` with netmap, hardware and host rings
    /// (`NR_REG_NIC_SW | NR_EXCLUSIVE`, API 14), and maps its memory.
    ///
    /// # Errors
    /// [`Error::BadName`], [`Error::NoSuchInterface`], [`Error::NoNetmap`],
    /// [`Error::PermissionDenied`], [`Error::Busy`] (another registration),
    /// [`Error::Rejected`] (any other refusal, with the kernel's reason when
    /// it logged one), [`Error::Layout`], [`Error::Unsupported`] off FreeBSD.
    pub fn open(ifname: &str) -> Result<Port<Kernel>, Error> {
        let name = IfName::new(ifname)?;
        let (inner, base, len, nifp_off) = imp::Inner::register(&name)?;
        // SAFETY: the mapping [base, base + len) lives as long as `inner`,
        // which the port owns; the kernel writes it only during our syscalls.
        unsafe { Port::from_region(Kernel { inner }, ifname, base, len, nifp_off) }
    }
}

/// The kernel's last netmap message about `ifname`, from the message buffer
/// (`kern.msgbuf`, what dmesg(8) prints), to explain a refusal.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
fn kernel_reason(ifname: &str) -> Option<String> {
    use crate::sysctl::{Kern, Sysctl};
    let log = Kern.get_str("kern.msgbuf").ok()?;
    last_netmap_line(&log, ifname)
}

/// The last line of `log` that netmap wrote about `ifname` (or about no
/// interface in particular), without its function-name prefix.
fn last_netmap_line(log: &str, ifname: &str) -> Option<String> {
    log.lines()
        .rev()
        .take(200)
        .find(|l| l.contains("netmap") && (l.contains(ifname) || !l.contains(": em")))
        .map(|l| l.trim().to_string())
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
    use crate::ifname::IfName;

    pub(super) struct Inner {
        fd: OwnedFd,
        base: NonNull<u8>,
        len: usize,
    }

    fn errno() -> io::Error {
        io::Error::last_os_error()
    }

    impl Inner {
        pub(super) fn register(name: &IfName) -> Result<(Inner, NonNull<u8>, usize, usize), Error> {
            let ifname = name.as_str();
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
                    _ => Error::Rejected {
                        iface: ifname.into(),
                        errno: e,
                        reason: super::kernel_reason(ifname),
                    },
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
}

#[cfg(not(target_os = "freebsd"))]
mod imp {
    use core::ptr::NonNull;
    use std::io;
    use std::time::Duration;

    use crate::error::Error;
    use crate::ifname::IfName;

    /// Uninhabited: no kernel netmap port can exist off FreeBSD.
    pub(super) enum Inner {}

    impl Inner {
        pub(super) fn register(
            _name: &IfName,
        ) -> Result<(Inner, NonNull<u8>, usize, usize), Error> {
            Err(Error::Unsupported)
        }
        pub(super) fn ioctl_sync(&mut self, _tx: bool) -> io::Result<()> {
            match *self {}
        }
        pub(super) fn wait(&mut self, _t: Option<Duration>) -> io::Result<bool> {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_reason_is_its_last_netmap_line_about_the_port() {
        let log = "em0: link state changed to UP\n\
            netmap_buf_size_validate error: using NS_MOREFRAG on em0 requires netmap buf size >= 4096\n\
            em1: link state changed to UP\n";
        let r = last_netmap_line(log, "em0").unwrap();
        assert!(r.contains("buf size >= 4096"), "{r}");
        assert_eq!(last_netmap_line("em0: link up\n", "em0"), None);
    }
}
