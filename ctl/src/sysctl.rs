//! Access to the sysctl tree behind a small trait.
//!
//! The real backend (FreeBSD, `sysctlbyname(3)`) lives in `sys.rs`; the
//! in-memory tree below is what the unit tests run against on Linux.

use thiserror::Error;

/// Why a sysctl access failed, independent of the platform's errno values.
// Constructed only by the FreeBSD backend (and tests).
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SysctlError {
    #[error("no such sysctl (ENOENT)")]
    NotFound,
    #[error("permission denied (EPERM)")]
    PermissionDenied,
    #[error("invalid argument (EINVAL)")]
    Invalid,
    #[error("operation not supported (EOPNOTSUPP)")]
    NotSupported,
    #[error("unexpected value size {0}")]
    BadSize(usize),
    #[error("value is not valid UTF-8 text")]
    BadString,
    #[error("{1} (errno {0})")]
    Os(i32, String),
}

/// The operations emtunctl needs from the sysctl tree.
pub trait Sysctl {
    /// A string value (`CTLTYPE_STRING`).
    fn get_str(&self, name: &str) -> Result<String, SysctlError>;
    /// An int-sized or long-sized signed value.
    fn get_int(&self, name: &str) -> Result<i64, SysctlError>;
    /// A u64 (counter(9)) or a uint, widened.
    fn get_u64(&self, name: &str) -> Result<u64, SysctlError>;
    /// Write an int/uint (4 bytes) value.
    fn set_int(&self, name: &str, value: i64) -> Result<(), SysctlError>;
    /// Names (last component) of the immediate children of a node.
    fn children(&self, name: &str) -> Result<Vec<String>, SysctlError>;
    /// Whether a node or leaf of this name exists.
    fn exists(&self, name: &str) -> bool;
    /// Short name of a process (argv[0] basename), for "tunneled by pid N (name)".
    fn proc_name(&self, _pid: i32) -> Option<String> {
        None
    }
}

#[cfg(test)]
pub mod mem {
    //! In-memory sysctl tree for tests.

    use super::{Sysctl, SysctlError};
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Val {
        Int(i64),
        U64(u64),
        Str(String),
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Access {
        Ro,
        Rw,
        Wo,
    }

    #[derive(Default)]
    pub struct MemSysctl {
        tree: RefCell<BTreeMap<String, (Val, Access)>>,
        procs: RefCell<HashMap<i32, String>>,
        write_errors: RefCell<HashMap<String, SysctlError>>,
    }

    impl MemSysctl {
        pub fn new() -> Self {
            Self::default()
        }
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
        pub fn value(&self, name: &str) -> Option<Val> {
            self.tree.borrow().get(name).map(|e| e.0.clone())
        }
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
            m.fail_writes("dev.em.1.tunnel.enable", SysctlError::NotSupported);
            assert_eq!(
                m.set_int("dev.em.1.tunnel.enable", 1),
                Err(SysctlError::NotSupported)
            );
        }
    }
}
