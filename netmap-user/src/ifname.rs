//! Interface names as the kernel accepts them.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A network interface name: 1 to 15 bytes (`IFNAMSIZ` is 16 with the
/// NUL, `sys/net/if.h`), no NUL byte, and no `/` (netmap reads a `/` as a
/// ring suffix, netmap(4) "PORT NAMES").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

impl IfName {
    /// Longest name in bytes.
    pub const MAX_LEN: usize = 15;

    /// Checks `name`.
    ///
    /// # Errors
    /// [`Error::BadName`] when it is empty, longer than 15 bytes, or holds a
    /// NUL or `/`.
    pub fn new(name: &str) -> Result<IfName, Error> {
        if name.is_empty()
            || name.len() > Self::MAX_LEN
            || name.bytes().any(|b| b == 0 || b == b'/')
        {
            return Err(Error::BadName(name.to_string()));
        }
        Ok(IfName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The driver part and the unit number, by the kernel's naming rule:
    /// `em0` is `("em", 0)`, `igb12` is `("igb", 12)`. Unit numbers have no
    /// leading zero (`em01` names no unit), and a name without a unit
    /// (`lo`, a renamed interface such as `wan`) has none.
    pub fn driver_unit(&self) -> Option<(&str, u32)> {
        let digits = self.0.len() - self.0.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (drv, unit) = self.0.split_at(self.0.len() - digits);
        if drv.is_empty() || unit.is_empty() || (unit.len() > 1 && unit.starts_with('0')) {
            return None;
        }
        unit.parse().ok().map(|u| (drv, u))
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IfName {
    type Err = Error;
    fn from_str(s: &str) -> Result<IfName, Error> {
        IfName::new(s)
    }
}

impl AsRef<str> for IfName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kernel_names_and_refuses_the_rest() {
        for ok in ["em0", "igb12", "lo0", "a", "fifteen_bytes_x"] {
            assert!(IfName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "sixteen_bytes_xx", "em0/1", "em\u{0}0"] {
            let e = IfName::new(bad).unwrap_err();
            assert!(matches!(e, Error::BadName(_)), "{bad:?}");
            assert!(e.to_string().contains("'/'"), "{e}");
        }
    }

    #[test]
    fn driver_and_unit() {
        let du = |s: &str| {
            IfName::new(s)
                .unwrap()
                .driver_unit()
                .map(|(d, u)| (d.to_string(), u))
        };
        assert_eq!(du("em0"), Some(("em".into(), 0)));
        assert_eq!(du("igb12"), Some(("igb".into(), 12)));
        assert_eq!(du("em01"), None);
        assert_eq!(du("em"), None);
        assert_eq!(du("0"), None);
        assert_eq!(du("vtnet0"), Some(("vtnet".into(), 0)));
    }
}
