//! Human tables and the stable JSON schema.
//!
//! JSON (schema 1), for `status --json`:
//! `{"schema":1,"interfaces":[{"name","driver","unit","state","enabled",
//!   "owner":{"pid","name"}|null,"owner_pid" (0 if none),"watchdog_us","link",
//!   "offloads":{"txcsum","txcsum6","tso4","tso6","vlanhwtag","safe"}|null,
//!   "stats":{"enter","exit","revoke_watchdog","revoke_admin","host_in",
//!            "host_out","host_drop","max_gap_us","full_reset","sleeps",
//!            "max_wait_us"}}]}`
//! and for `stats --json`: `{"schema":1,"name","state","stats":{...}}`.
//! Fields are only ever added; a change of meaning bumps "schema".

use crate::iface::{offload_names, Caps, BAD_OFFLOADS};
use crate::ports::PortStatus;
use emtun::agent::{Counters, COUNTER_NAMES};
use emtun::duration::{format_us, format_watchdog};
use serde_json::{json, Map, Value};

/// Version of the JSON output.
pub const SCHEMA: u64 = 1;

/// Offloads column: "off" when safe, else the enabled bad ones.
pub fn offloads_cell(caps: Option<Caps>) -> String {
    match caps {
        None => "?".into(),
        Some(c) if c.bad() == 0 => "off".into(),
        Some(c) => offload_names(c.bad()).join(","),
    }
}

fn owner_cell(s: &PortStatus) -> String {
    s.owner
        .as_ref()
        .map(|o| o.to_string())
        .unwrap_or_else(|| "-".into())
}

/// Left-aligned text table with two spaces between columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `status` as a table, one row per port.
pub fn status_table(list: &[PortStatus]) -> String {
    let header = [
        "IFACE",
        "STATE",
        "OWNER",
        "WATCHDOG",
        "LINK",
        "OFFLOADS",
        "ENTER",
        "EXIT",
        "REVOKE",
        "HOST_IN",
        "HOST_OUT",
        "HOST_DROP",
        "MAX_GAP",
        "MAX_WAIT",
    ];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let c = &s.counters.0;
            vec![
                s.port.ifname.to_string(),
                s.state.to_string(),
                owner_cell(s),
                format_watchdog(s.watchdog_us),
                s.link.as_str().to_string(),
                offloads_cell(s.caps),
                c[0].to_string(),
                c[1].to_string(),
                format!("{}/{}", c[2], c[3]),
                c[4].to_string(),
                c[5].to_string(),
                c[6].to_string(),
                format_us(c[Counters::MAX_GAP_US]),
                format_us(c[Counters::MAX_WAIT_US]),
            ]
        })
        .collect();
    let mut out = table(&header, &rows);
    if list.iter().any(|s| s.caps.is_some_and(|c| c.bad() != 0)) {
        out.push_str("note: `emtunctl arm` turns the listed offloads off (they break tunneled host traffic)\n");
    }
    out.push_str(
        "REVOKE is watchdog/admin revokes; MAX_GAP is the longest gap between owner heartbeats; \
         MAX_WAIT the longest that frames waited for the owner\n",
    );
    out
}

fn stats_obj(s: &PortStatus) -> Value {
    let mut m = Map::new();
    for (i, n) in COUNTER_NAMES.iter().enumerate() {
        m.insert((*n).to_string(), json!(s.counters.0[i]));
    }
    Value::Object(m)
}

fn offloads_obj(caps: Option<Caps>) -> Value {
    match caps {
        None => Value::Null,
        Some(c) => {
            let mut m = Map::new();
            for (bit, name) in BAD_OFFLOADS {
                m.insert(name.to_string(), json!(c.enabled & bit != 0));
            }
            m.insert("safe".into(), json!(c.bad() == 0));
            Value::Object(m)
        }
    }
}

/// One port in the JSON schema.
pub fn status_obj(s: &PortStatus) -> Value {
    json!({
        "name": s.port.ifname.as_str(),
        "driver": s.port.driver.as_str(),
        "unit": s.port.unit,
        "state": s.state.as_str(),
        "enabled": s.enabled,
        "owner": s.owner.as_ref().map(|o| json!({"pid": o.pid, "name": o.name})),
        "owner_pid": s.owner.as_ref().map_or(0, |o| o.pid),
        "watchdog_us": s.watchdog_us,
        "link": s.link.as_str(),
        "offloads": offloads_obj(s.caps),
        "stats": stats_obj(s),
    })
}

/// `status --json`
pub fn status_json(list: &[PortStatus]) -> Value {
    json!({
        "schema": SCHEMA,
        "interfaces": list.iter().map(status_obj).collect::<Vec<_>>(),
    })
}

/// `stats --json`
pub fn stats_json(s: &PortStatus) -> Value {
    json!({
        "schema": SCHEMA,
        "name": s.port.ifname.as_str(),
        "state": s.state.as_str(),
        "stats": stats_obj(s),
    })
}

/// One metric of the Prometheus exposition: name, type, help, and the agent
/// value it shows (emtun(8) "METRICS").
const PROM_COUNTERS: [(&str, &str, &str); 12] = [
    (
        "emtun_watchdog_us",
        "gauge",
        "Watchdog period in microseconds (0 = off).",
    ),
    (
        "emtun_max_gap_us",
        "gauge",
        "Longest gap between two heartbeats of the owner, in microseconds.",
    ),
    (
        "emtun_max_wait_us",
        "gauge",
        "Longest that frames waited for the owner, in microseconds (sampled every watchdog period / 4).",
    ),
    (
        "emtun_enter_total",
        "counter",
        "Entries into tunneled mode.",
    ),
    ("emtun_exit_total", "counter", "Exits from tunneled mode."),
    (
        "emtun_revoke_watchdog_total",
        "counter",
        "Registrations revoked by the watchdog.",
    ),
    (
        "emtun_revoke_admin_total",
        "counter",
        "Registrations revoked by an administrator.",
    ),
    (
        "emtun_host_in_total",
        "counter",
        "Frames passed from the tunnel to the kernel stack.",
    ),
    (
        "emtun_host_out_total",
        "counter",
        "Frames queued by the kernel stack for the tunnel.",
    ),
    (
        "emtun_host_drop_total",
        "counter",
        "Kernel stack frames dropped.",
    ),
    (
        "emtun_full_reset_total",
        "counter",
        "Mode switches that fell back to a full NIC reset.",
    ),
    (
        "emtun_sleeps_total",
        "counter",
        "Times the owner slept in poll(2) with the RX interrupts unmasked.",
    ),
];

/// `stats --format prometheus`: the text exposition format (version 0.0.4)
/// for node_exporter's textfile collector; every sample carries `iface`.
pub fn stats_prometheus(s: &PortStatus) -> String {
    use std::fmt::Write as _;
    let iface = s.port.ifname.as_str();
    let mut out = String::from(
        "# HELP emtun_state Tunnel state of the interface (1 = current).\n# TYPE emtun_state gauge\n",
    );
    for st in ["default", "armed", "tunneled", "revoked"] {
        let v = u8::from(s.state.as_str() == st);
        let _ = writeln!(out, "emtun_state{{iface=\"{iface}\",state=\"{st}\"}} {v}");
    }
    for (name, kind, help) in PROM_COUNTERS {
        let value = match name {
            "emtun_watchdog_us" => s.watchdog_us,
            "emtun_max_gap_us" => s.counters.0[Counters::MAX_GAP_US],
            "emtun_max_wait_us" => s.counters.0[Counters::MAX_WAIT_US],
            _ => {
                let leaf = name.trim_start_matches("emtun_").trim_end_matches("_total");
                s.counters.get(leaf).unwrap_or(0)
            }
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{iface=\"{iface}\"}} {value}"
        );
    }
    out
}

/// `stats` as text.
pub fn stats_text(s: &PortStatus) -> String {
    let mut out = format!(
        "{}: {}{}\n",
        s.port.ifname,
        s.state,
        s.owner
            .as_ref()
            .map(|o| format!(" by {o}"))
            .unwrap_or_default()
    );
    let c = &s.counters.0;
    let desc = [
        "tunneled sessions started",
        "tunneled sessions ended",
        "revoked by the watchdog",
        "revoked by the administrator",
        "frames passed from the tunnel to the kernel stack",
        "frames queued from the kernel stack to the tunnel",
        "kernel stack frames dropped (queue full, offload, revoke)",
        "longest gap between owner heartbeats",
        "mode switches that fell back to a full NIC reset",
        "sleeps in poll(2) with the RX interrupts unmasked",
        "longest that frames waited for the owner",
    ];
    for (i, n) in COUNTER_NAMES.iter().enumerate() {
        let v = if i == Counters::MAX_GAP_US || i == Counters::MAX_WAIT_US {
            format!("{} ({})", c[i], format_us(c[i]))
        } else {
            c[i].to_string()
        };
        out.push_str(&format!("  {n:<16} {v:>20}  {}\n", desc[i]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Owner;
    use crate::iface::{IFCAP_TSO4, IFCAP_TXCSUM};
    use crate::ports::Port;
    use emtun::agent::State;
    use emtun::netmap_user::ifnet::Link;
    use emtun::IfName;

    fn sample(name: &str, state: State, owner: Option<Owner>, caps: Option<Caps>) -> PortStatus {
        PortStatus {
            port: Port::of(&IfName::new(name).unwrap()).unwrap(),
            state,
            enabled: true,
            watchdog_us: 10_000,
            owner,
            caps,
            link: Link::Up,
            counters: Counters([1, 0, 2, 3, 1000, 900, 5, 1_500, 0, 42, 2_500]),
        }
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["xxx".into(), "1".into()],
                vec!["y".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A    BB\nxxx  1\ny    22\n");
    }

    #[test]
    fn status_table_shows_fields() {
        let s = sample(
            "em0",
            State::Tunneled,
            Some(Owner {
                pid: 4242,
                name: Some("fwd".into()),
            }),
            Some(Caps {
                supported: !0,
                enabled: 0,
            }),
        );
        let t = status_table(&[s]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("IFACE"));
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            row,
            vec![
                "em0", "tunneled", "pid", "4242", "(fwd)", "10ms", "up", "off", "1", "0", "2/3",
                "1000", "900", "5", "1.5ms", "2.5ms"
            ]
        );
        assert!(!t.contains("note: `emtunctl arm`"));
    }

    #[test]
    fn status_table_flags_bad_offloads() {
        let s = sample(
            "em1",
            State::Default,
            None,
            Some(Caps {
                supported: !0,
                enabled: IFCAP_TXCSUM | IFCAP_TSO4,
            }),
        );
        let t = status_table(&[s]);
        assert!(t.lines().nth(1).unwrap().contains(" txcsum,tso4 "), "{t}");
        assert!(t.contains("note: `emtunctl arm` turns the listed offloads off"));
        assert_eq!(offloads_cell(None), "?");
    }

    #[test]
    fn json_schema() {
        let list = vec![
            sample(
                "em0",
                State::Tunneled,
                Some(Owner {
                    pid: 4242,
                    name: Some("fwd".into()),
                }),
                Some(Caps {
                    supported: !0,
                    enabled: IFCAP_TSO4,
                }),
            ),
            sample("em1", State::Armed, None, None),
        ];
        let text = status_json(&list).to_string();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], 1);
        let ifs = v["interfaces"].as_array().unwrap();
        assert_eq!(ifs.len(), 2);
        let a = &ifs[0];
        assert_eq!(a["name"], "em0");
        assert_eq!(a["driver"], "em");
        assert_eq!(a["unit"], 0);
        assert_eq!(a["state"], "tunneled");
        assert_eq!(a["enabled"], true);
        assert_eq!(a["owner"]["pid"], 4242);
        assert_eq!(a["owner"]["name"], "fwd");
        assert_eq!(a["watchdog_us"], 10_000);
        assert_eq!(a["link"], "up");
        assert_eq!(a["offloads"]["tso4"], true);
        assert_eq!(a["offloads"]["txcsum"], false);
        assert_eq!(a["offloads"]["safe"], false);
        let stats = a["stats"].as_object().unwrap();
        let keys: Vec<&String> = stats.keys().collect();
        let mut want: Vec<&str> = COUNTER_NAMES.to_vec();
        want.sort_unstable();
        let mut got: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(a["stats"]["host_in"], 1000);
        assert_eq!(a["stats"]["max_gap_us"], 1500);
        let b = &ifs[1];
        assert!(b["owner"].is_null());
        assert_eq!(b["owner_pid"], 0);
        assert_eq!(a["owner_pid"], 4242);
        assert!(b["offloads"].is_null());
        // The exact set of top-level keys per interface is part of the schema.
        let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec![
                "driver",
                "enabled",
                "link",
                "name",
                "offloads",
                "owner",
                "owner_pid",
                "state",
                "stats",
                "unit",
                "watchdog_us"
            ]
        );
    }

    #[test]
    fn json_keeps_u64_exact() {
        let mut s = sample("em0", State::Armed, None, None);
        s.counters.0[4] = u64::MAX;
        let v: Value = serde_json::from_str(&stats_json(&s).to_string()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["name"], "em0");
        assert_eq!(v["state"], "armed");
        assert_eq!(v["stats"]["host_in"].as_u64(), Some(u64::MAX));
    }

    #[test]
    fn stats_text_lists_every_counter() {
        let s = sample(
            "em0",
            State::Tunneled,
            Some(Owner { pid: 9, name: None }),
            None,
        );
        let t = stats_text(&s);
        assert!(t.starts_with("em0: tunneled by pid 9\n"), "{t}");
        for n in COUNTER_NAMES {
            assert!(t.contains(&format!("  {n} ")), "{n} missing in {t}");
        }
        assert!(t.contains("1500 (1.5ms)"));
    }

    /// The exposition emtun(8) documents, pinned by a golden file that the
    /// harness's unit tests parse with prometheus_client.
    #[test]
    fn prometheus_matches_the_golden_exposition() {
        let mut s = sample("em0", State::Tunneled, None, None);
        s.counters = Counters([3, 2, 1, 0, 52, 48, 0, 1210, 0, 7, 900]);
        assert_eq!(
            stats_prometheus(&s),
            include_str!("../tests/data/stats-em0.prom")
        );
    }

    /// The documented `status --json` schema 1, pinned by a golden file
    /// that the VM harness's unit tests check against its own validator.
    #[test]
    fn status_json_matches_the_golden_schema_1_sample() {
        let s = sample(
            "em0",
            State::Tunneled,
            Some(Owner {
                pid: 4242,
                name: Some("fwd".into()),
            }),
            Some(Caps {
                supported: !0,
                enabled: IFCAP_TXCSUM,
            }),
        );
        let golden: Value =
            serde_json::from_str(include_str!("../tests/data/status-schema1.json")).unwrap();
        assert_eq!(status_json(&[s]), golden);
    }
}
