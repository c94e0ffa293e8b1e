//! sysctl(3): the one access path to the kernel's sysctl tree, for the
//! library, emtunctl and the VM probe.
//!
//! [`Sysctl`] is what callers need; [`Kern`] is the FreeBSD kernel's tree
//! (`sysctlbyname(3)`, `sysctl(3)` by MIB for listings), and `mem::MemSysctl`
//! (feature `sim`) an in-memory tree for tests.

use thiserror::Error;

/// Why a sysctl access failed, independent of the platform's errno values
/// (sysctl(3) ERRORS).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SysctlError {
    /// `ENOENT`: no such name.
    #[error("no such sysctl (ENOENT)")]
    NotFound,
    /// `EPERM`/`EACCES`: writing needs root (or the node is read-only).
    #[error("permission denied (EPERM)")]
    PermissionDenied,
    /// `EINVAL`: the value was refused.
    #[error("invalid argument (EINVAL)")]
    Invalid,
    /// `EOPNOTSUPP`: the handler refused the operation.
    #[error("operation not supported (EOPNOTSUPP)")]
    NotSupported,
    /// The value has a size this accessor does not read.
    #[error("unexpected value size {0}")]
    BadSize(usize),
    /// A string value is not UTF-8.
    #[error("value is not valid UTF-8 text")]
    BadString,
    /// There is no sysctl tree on this system (not FreeBSD).
    #[error("sysctl needs FreeBSD")]
    Unsupported,
    /// Any other errno, with its text.
    #[error("{1} (errno {0})")]
    Os(i32, String),
}

/// Read and write access to a sysctl tree.
pub trait Sysctl {
    /// A string value (`CTLTYPE_STRING`), without the trailing NUL.
    ///
    /// # Errors
    /// [`SysctlError`] as sysctl(3) reports it.
    fn get_str(&self, name: &str) -> Result<String, SysctlError>;
    /// The raw bytes of any value (structures and arrays, e.g.
    /// `kern.cp_time`: `long[CPUSTATES]`).
    ///
    /// # Errors
    /// [`SysctlError`] as sysctl(3) reports it.
    fn get_bytes(&self, name: &str) -> Result<Vec<u8>, SysctlError>;
    /// An int-sized or long-sized signed value.
    ///
    /// # Errors
    /// [`SysctlError::BadSize`] for other sizes; others as sysctl(3).
    fn get_int(&self, name: &str) -> Result<i64, SysctlError>;
    /// A `u64` (counter(9)) or a `uint`, widened.
    ///
    /// # Errors
    /// [`SysctlError::BadSize`] for other sizes; others as sysctl(3).
    fn get_u64(&self, name: &str) -> Result<u64, SysctlError>;
    /// Writes an `int`/`uint` (4 bytes).
    ///
    /// # Errors
    /// [`SysctlError::Invalid`] for values outside `i32::MIN..=u32::MAX`;
    /// others as sysctl(3) (the handler's errno).
    fn set_int(&self, name: &str, value: i64) -> Result<(), SysctlError>;
    /// An array of 64-bit values (`long[]` on amd64, e.g. `kern.cp_time`),
    /// in the host's byte order.
    ///
    /// # Errors
    /// [`SysctlError::BadSize`] when the size is not a multiple of 8;
    /// others as sysctl(3).
    fn get_u64s(&self, name: &str) -> Result<Vec<u64>, SysctlError> {
        let b = self.get_bytes(name)?;
        if b.len() % 8 != 0 {
            return Err(SysctlError::BadSize(b.len()));
        }
        Ok(b.chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_ne_bytes(w)
            })
            .collect())
    }
    /// Names (last component) of the immediate children of a node.
    ///
    /// # Errors
    /// [`SysctlError::NotFound`] when the node does not exist.
    fn children(&self, name: &str) -> Result<Vec<String>, SysctlError>;
    /// Whether a node or leaf of this name exists.
    fn exists(&self, name: &str) -> bool;
    /// Short name of a process (argv\[0\] basename), for "tunneled by pid N
    /// (name)"; `None` when unknown.
    fn proc_name(&self, _pid: i32) -> Option<String> {
        None
    }
}

/// The running kernel's sysctl tree. Off FreeBSD every access fails with
/// [`SysctlError::Unsupported`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Kern;

#[cfg(target_os = "freebsd")]
mod freebsd {
    use super::{Kern, Sysctl, SysctlError};
    use libc::{c_int, c_uint, c_void, size_t};
    use std::ffi::{CStr, CString};
    use std::io;
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

    impl Sysctl for Kern {
        fn get_str(&self, name: &str) -> Result<String, SysctlError> {
            let mut buf = self.get_bytes(name)?;
            if let Some(z) = buf.iter().position(|&b| b == 0) {
                buf.truncate(z);
            }
            String::from_utf8(buf).map_err(|_| SysctlError::BadString)
        }

        fn get_bytes(&self, name: &str) -> Result<Vec<u8>, SysctlError> {
            let c = cname(name)?;
            for _ in 0..4 {
                let size = size_by_name(&c)?;
                let mut buf = vec![0u8; size + 16];
                match read_by_name(&c, &mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        return Ok(buf);
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
}

#[cfg(not(target_os = "freebsd"))]
impl Sysctl for Kern {
    fn get_str(&self, _: &str) -> Result<String, SysctlError> {
        Err(SysctlError::Unsupported)
    }
    fn get_bytes(&self, _: &str) -> Result<Vec<u8>, SysctlError> {
        Err(SysctlError::Unsupported)
    }
    fn get_int(&self, _: &str) -> Result<i64, SysctlError> {
        Err(SysctlError::Unsupported)
    }
    fn get_u64(&self, _: &str) -> Result<u64, SysctlError> {
        Err(SysctlError::Unsupported)
    }
    fn set_int(&self, _: &str, _: i64) -> Result<(), SysctlError> {
        Err(SysctlError::Unsupported)
    }
    fn children(&self, _: &str) -> Result<Vec<String>, SysctlError> {
        Err(SysctlError::Unsupported)
    }
    fn exists(&self, _: &str) -> bool {
        false
    }
}

#[cfg(feature = "sim")]
pub mod mem {
    //! In-memory sysctl tree for tests.

    use super::{Sysctl, SysctlError};
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    #[derive(Debug, Clone, PartialEq, Eq)]
    /// A value of the in-memory tree.
    pub enum Val {
        /// An `int` or `long`.
        Int(i64),
        /// A `u64` (counter(9)).
        U64(u64),
        /// A string.
        Str(String),
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    /// Who may read and write a leaf (`CTLFLAG_RD`, `RW`, `WR`).
    pub enum Access {
        /// Read-only.
        Ro,
        /// Read-write.
        Rw,
        /// Write-only (reads fail with `EPERM`).
        Wo,
    }

    #[derive(Default)]
    /// An in-memory sysctl tree.
    pub struct MemSysctl {
        tree: RefCell<BTreeMap<String, (Val, Access)>>,
        procs: RefCell<HashMap<i32, String>>,
        write_errors: RefCell<HashMap<String, SysctlError>>,
    }

    impl MemSysctl {
        /// An empty tree.
        pub fn new() -> Self {
            Self::default()
        }
        /// Adds (or replaces) a leaf.
        pub fn add(&self, name: &str, val: Val, access: Access) {
            self.tree
                .borrow_mut()
                .insert(name.to_string(), (val, access));
        }
        /// Change a value regardless of access (what the kernel does internally).
        pub fn put(&self, name: &str, val: Val) {
            if let Some(e) = self.tree.borrow_mut().get_mut(name) {
                e.0 = val;
            } else {
                panic!("MemSysctl::put on missing {name}");
            }
        }
        /// The value of a leaf, regardless of access.
        pub fn value(&self, name: &str) -> Option<Val> {
            self.tree.borrow().get(name).map(|e| e.0.clone())
        }
        /// Names process `pid` for [`Sysctl::proc_name`].
        pub fn set_proc(&self, pid: i32, name: &str) {
            self.procs.borrow_mut().insert(pid, name.to_string());
        }
        /// Make the next writes to `name` fail with `err`.
        pub fn fail_writes(&self, name: &str, err: SysctlError) {
            self.write_errors.borrow_mut().insert(name.to_string(), err);
        }
        fn read(&self, name: &str) -> Result<Val, SysctlError> {
            match self.tree.borrow().get(name) {
                None => Err(SysctlError::NotFound),
                Some((_, Access::Wo)) => Err(SysctlError::PermissionDenied),
                Some((v, _)) => Ok(v.clone()),
            }
        }
        /// Access and injected-error checks that precede a write.
        pub fn check_write(&self, name: &str) -> Result<(), SysctlError> {
            if let Some(e) = self.write_errors.borrow().get(name) {
                return Err(e.clone());
            }
            match self.tree.borrow().get(name) {
                None => Err(SysctlError::NotFound),
                Some((_, Access::Ro)) => Err(SysctlError::PermissionDenied),
                Some(_) => Ok(()),
            }
        }
    }

    impl Sysctl for MemSysctl {
        fn get_str(&self, name: &str) -> Result<String, SysctlError> {
            match self.read(name)? {
                Val::Str(s) => Ok(s),
                _ => Err(SysctlError::BadSize(8)),
            }
        }
        fn get_bytes(&self, name: &str) -> Result<Vec<u8>, SysctlError> {
            Ok(match self.read(name)? {
                Val::Str(s) => s.into_bytes(),
                Val::Int(v) => v.to_ne_bytes().to_vec(),
                Val::U64(v) => v.to_ne_bytes().to_vec(),
            })
        }
        fn get_int(&self, name: &str) -> Result<i64, SysctlError> {
            match self.read(name)? {
                Val::Int(v) => Ok(v),
                _ => Err(SysctlError::BadSize(0)),
            }
        }
        fn get_u64(&self, name: &str) -> Result<u64, SysctlError> {
            match self.read(name)? {
                Val::U64(v) => Ok(v),
                Val::Int(v) if v >= 0 => Ok(v as u64),
                _ => Err(SysctlError::BadSize(0)),
            }
        }
        fn set_int(&self, name: &str, value: i64) -> Result<(), SysctlError> {
            self.check_write(name)?;
            let mut t = self.tree.borrow_mut();
            let e = t.get_mut(name).ok_or(SysctlError::NotFound)?;
            e.0 = match e.0 {
                Val::U64(_) => Val::U64(u64::try_from(value).map_err(|_| SysctlError::Invalid)?),
                _ => Val::Int(value),
            };
            Ok(())
        }
        fn children(&self, name: &str) -> Result<Vec<String>, SysctlError> {
            let prefix = format!("{name}.");
            let set: BTreeSet<String> = self
                .tree
                .borrow()
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter_map(|rest| rest.split('.').next())
                .map(str::to_string)
                .collect();
            if set.is_empty() {
                return Err(SysctlError::NotFound);
            }
            Ok(set.into_iter().collect())
        }
        fn exists(&self, name: &str) -> bool {
            let prefix = format!("{name}.");
            self.tree
                .borrow()
                .keys()
                .any(|k| k == name || k.starts_with(&prefix))
        }
        fn proc_name(&self, pid: i32) -> Option<String> {
            self.procs.borrow().get(&pid).cloned()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tree_basics() {
            let m = MemSysctl::new();
            m.add("dev.em.0.%desc", Val::Str("Intel".into()), Access::Ro);
            m.add("dev.em.1.tunnel.enable", Val::Int(0), Access::Rw);
            m.add("dev.em.1.tunnel.stats.enter", Val::U64(3), Access::Ro);
            m.add("dev.em.1.tunnel.revoke", Val::Int(0), Access::Wo);
            assert_eq!(m.children("dev.em").unwrap(), vec!["0", "1"]);
            assert_eq!(
                m.children("dev.em.1.tunnel").unwrap(),
                vec!["enable", "revoke", "stats"]
            );
            assert_eq!(m.children("dev.igb"), Err(SysctlError::NotFound));
            assert!(m.exists("dev.em.1.tunnel"));
            assert!(!m.exists("dev.em.1.tun"));
            assert_eq!(m.get_u64("dev.em.1.tunnel.stats.enter").unwrap(), 3);
            assert_eq!(m.get_str("dev.em.0.%desc").unwrap(), "Intel");
            assert_eq!(
                m.get_int("dev.em.1.tunnel.revoke"),
                Err(SysctlError::PermissionDenied)
            );
            assert_eq!(
                m.set_int("dev.em.1.tunnel.stats.enter", 0),
                Err(SysctlError::PermissionDenied)
            );
            m.set_int("dev.em.1.tunnel.enable", 1).unwrap();
            assert_eq!(m.get_int("dev.em.1.tunnel.enable").unwrap(), 1);
            assert_eq!(m.get_u64s("dev.em.1.tunnel.stats.enter").unwrap(), vec![3]);
            assert_eq!(
                m.get_u64s("dev.em.0.%desc"),
                Err(SysctlError::BadSize(5)),
                "5 bytes of text are no u64 array"
            );
            m.fail_writes("dev.em.1.tunnel.enable", SysctlError::NotSupported);
            assert_eq!(
                m.set_int("dev.em.1.tunnel.enable", 1),
                Err(SysctlError::NotSupported)
            );
        }
    }
}
