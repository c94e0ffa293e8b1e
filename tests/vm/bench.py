#!/usr/bin/env python3
"""emtun VM benchmark (issue 10): the DUT's CPU per signal pair, with the DUT as the bottleneck.

`make vm-bench IMAGE=disk.img` (tests/vm/run.sh with BENCH=1) boots the same two VMs as the
end-to-end test (harness.py: DUT and peer on one wire) and runs three scenarios:

pairs   The peer drives 50-octet pairs the same cheap way in every case: `pingpong --role client`
        over netmap on its unarmed em0 (stock netmap), busy-polling, a window of W pairs in flight,
        TX batched per ring sync. The DUT answers by one of
          kernel_udp           default mode: a UDP echo server (`pingpong --udp`), the peer's
                               client speaks UDP/IPv4 in raw frames (`--udp-over-netmap`)
          user_busy/_interval/_adaptive
                               the user path: `pingpong --role server` owns the tunnel and answers
                               the claimed EtherType itself, in each poll mode
          kernel_udp_tunneled  the UDP echo server while `emtunctl run --poll adaptive` tunnels the
                               kernel's traffic (the tunnel's cost for kernel traffic)
        Phase 1: pairs/s at saturation (no pacing), per mode. Phase 2: a fixed offered rate R that
        every mode sustains (BENCH_RATE, or half the slowest saturation rate), RUNS client runs per
        mode; the DUT's server reads kern.cp_time (the whole guest: every process, interrupt and
        kernel thread) over a window of pairs inside each run (`--cpu-window`): DUT CPU per pair,
        its spread over the runs, and the ratio kernel_udp / mode; beside it the same from the
        idle threads' runtime (`exact_*`: all CPU time minus idle, not sampled).
tcp     kernel TCP peer -> DUT through the tunnel in each poll mode against default mode (MB/s,
        timed on the peer), and ping RTT from the peer (the RTT the tunnel adds).
anchor  the stock netmap `bridge -i netmap:em0 -i netmap:em0^` (em0 disarmed: stock netmap) as the
        tunnel, on the same image in the same run: TCP through it, ping RTT, the outage after
        kill -9 and after SIGSTOP (capped: the bridge has no watchdog); then ours: kill -9 of
        `emtunctl run`, SIGSTOP under a 10 ms watchdog.

Deterministic CPU accounting: with `--icount SHIFT` (run.sh: ICOUNT) the DUT runs under QEMU's
instruction counting (`-icount shift=SHIFT`, `-accel tcg,thread=single`, one vCPU): guest time is
instructions x 2^SHIFT ns, so the guest's CPU per pair counts guest instructions and not host
time; the peer stays on ordinary TCG (its clock is real time: pairs/s, MB/s and RTT are timed
there). This is a benchmark: it fails only when a run produced no figure.
"""
import argparse
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import (DUT_IP, DUT_MAC, ETHERTYPE, PEER_IP, SYS, UDP_ECHO_PORT, Run,  # noqa: E402
                     num, parse_json, parse_pingpong)

BENCH_SCENARIOS = ["pairs", "tcp", "anchor"]
PP = "/tmp/e/bin/pingpong"
PP_UDP_PORT = 7778
POLL_MODES = ("busy", "interval", "adaptive")


def modes():
    """The DUT modes of the pairs scenario: (name, answered by, DUT poll mode or None)."""
    return ([("kernel_udp", "kernel", None)] + [("user_%s" % p, "user", p) for p in POLL_MODES]
            + [("kernel_udp_tunneled", "kernel", "adaptive")])


def parse_windows(text):
    """The `pingpong window ...` lines of a server's output (possibly `log: ` prefixed)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("log: "):
            line = line[5:]
        if line.startswith("pingpong window "):
            out.append({k: (num(v) if num(v) is not None else v) for k, v in re.findall(r"(\w+)=(\S+)", line)})
    return out


def spread_pct(xs):
    """(max - min) / median of xs in %, None for fewer than 2 values."""
    xs = sorted(x for x in xs if x is not None)
    if len(xs) < 2 or not xs[len(xs) // 2]:
        return None
    return round(100.0 * (xs[-1] - xs[0]) / xs[len(xs) // 2], 2)


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def pick_rate(sat, fraction=0.5):
    """A fixed offered rate every mode sustains: `fraction` of the slowest saturation rate,
    rounded down to two significant digits (at least 10 pairs/s)."""
    rates = [r for r in sat.values() if r]
    if not rates:
        return None
    r = max(10.0, min(rates) * fraction)
    mag = 10 ** (len(str(int(r))) - 2) if r >= 100 else 1
    return int(r // mag * mag)


def icount_shift(spec):
    """The fixed shift of an --icount value ("2" or "shift=2,sleep=off"); None without one."""
    if spec is None:
        return None
    m = re.match(r"(?:.*shift=)?(\d+)", str(spec))
    return int(m.group(1)) if m else None


class Bench(Run):
    """The benchmark scenarios on harness.Run's VMs and helpers."""

    # -- the pairs benchmark ------------------------------------------------------------------
    def client_cmd(self, kind, secs, rate=None):
        a = self.a
        cmd = ("%s em0 --role client --peer %s --poll busy --window %d --duration %d --delay-ms %d --timeout %d"
               % (PP, DUT_MAC, a.window, secs, a.delay_ms, secs + 30))
        if rate:
            cmd += " --rate %d" % rate
            if a.burst > 1:
                cmd += " --burst %d" % a.burst
        if kind == "kernel":
            cmd += " --udp-over-netmap %s:%d --src-ip %s" % (DUT_IP, PP_UDP_PORT, PEER_IP)
        else:
            cmd += " --ethertype %s" % ETHERTYPE
        return cmd

    def start_dut(self, t, name, kind, poll, window):
        """Start the DUT's side of a mode; returns the bg job names to stop, or None."""
        jobs = []
        cw = "--cpu-window %d:%d" % window
        if kind == "user":
            rc, kv, out = self.dut.g("tunstart ppsrv %s em0 --role server --count 0 --timeout 7200 --ethertype %s "
                                     "--poll %s %s" % (PP, ETHERTYPE, poll, cw), 60)
            good = rc == 0 and (not self.kernel_tunnel or kv.get("state") == "tunneled")
            if not good:
                t.ok(False, "%s: pingpong server owns the tunnel" % name, state=kv.get("state"),
                     out=out.strip()[-400:])
                self.dut.g("tunstop ppsrv TERM", 30)
                return None
            jobs.append("ppsrv")
        else:
            if poll:
                started, _ = self.start_tunnel(t, "bt", poll)
                if not started:
                    self.dut.g("tunstop bt TERM", 30)
                    return None
                jobs.append("bt")
            self.dut.g("bg ppsrv %s --udp %s:%d --role server --count 0 --timeout 7200 %s"
                       % (PP, DUT_IP, PP_UDP_PORT, cw), 30)
            jobs.insert(0, "ppsrv")
        # a registration makes the DUT's e1000 refuse frames for ~1 s (QEMU): wait for the wire
        self.dut.g("waitping %s 30" % PEER_IP, 60)
        return jobs

    def stop_dut(self, jobs):
        out = ""
        for j in jobs:
            out += self.dut.g("tunstop %s TERM" % j, 40)[2]
        self.dut.g("waitping %s 30" % PEER_IP, 60)
        return out

    def client_run(self, kind, secs, rate=None):
        to = secs + 60
        rc, out = self.peer.run("timeout %d %s" % (to, self.client_cmd(kind, secs, rate)), to + 30)
        r = parse_pingpong(out)
        r["rc"] = rc
        # the peer's own em0 left netmap mode: its e1000 refuses frames for ~1 s
        time.sleep(1.5)
        return r

    def sc_pairs(self, t):
        a = self.a
        icount = getattr(a, "icount", None)
        t.note("accelerator: %s%s; DUT %d vCPU, peer %d vCPU" % (
            a.accel, " with -icount shift=%s on the DUT (tcg,thread=single)" % icount if icount is not None else "",
            a.dut_smp, a.peer_smp))
        t.fig(accelerator=a.accel, icount=icount, icount_shift=icount_shift(icount), dut_vcpus=a.dut_smp,
              window=a.window)
        if not self.have.get("pingpong"):
            t.ok(False, "pingpong example is on the data disk")
            return
        if self.kernel_tunnel:
            self.kset(t, "enable=1", "watchdog_us=%d" % a.watchdog_us_run, "stats.reset=1")
        ms = [m for m in modes() if m[0] in a.modes]
        # phase 1: saturation (SAT_SECS=0 skips it; RATE must then be given)
        sat, sat_cpu = {}, {}
        for name, kind, poll in (ms if a.sat_secs > 0 else []):
            jobs = self.start_dut(t, name, kind, poll, (a.sat_skip, a.sat_n))
            if jobs is None:
                continue
            r = self.client_run(kind, a.sat_secs)
            srv = self.stop_dut(jobs)
            w = parse_windows(srv)
            sat[name] = num(r.get("pairs_per_s"))
            sat_cpu[name] = w[-1].get("guest_cpu_us_per_pair") if w else None
            t.ok(r["rc"] == 0 and bool(sat[name]), "%s: saturation %s pairs/s (window %d, %d s)"
                 % (name, sat[name], a.window, a.sat_secs),
                 pairs=r.get("pairs"), lost=r.get("lost"), pairs_per_s=sat[name], rtt_avg_us=r.get("rtt_avg_us"),
                 dut_cpu_us_per_pair=sat_cpu[name], raw=r.get("raw"))
        t.fig(saturation_pairs_per_s=sat, saturation_dut_cpu_us_per_pair=sat_cpu)
        rate = a.rate or pick_rate(sat)
        if not rate:
            t.ok(False, "a fixed rate: no mode produced a saturation figure")
            return
        t.fig(fixed_rate_pairs_per_s=rate, burst=a.burst)
        # phase 2: a fixed offered rate, RUNS client runs per mode, a CPU window in each
        skip, n = int(rate * a.warm_s), int(rate * (a.fixed_secs - a.warm_s - a.tail_s))
        res = {}
        for name, kind, poll in ms:
            jobs = self.start_dut(t, name, kind, poll, (skip, n))
            if jobs is None:
                continue
            clients = []
            for i in range(a.runs):
                clients.append(self.client_run(kind, a.fixed_secs, rate))
            srv = self.stop_dut(jobs)
            wins = parse_windows(srv)
            per = [w.get("guest_cpu_us_per_pair") for w in wins]
            exact = [w.get("guest_cpu_exact_us_per_pair") for w in wins]
            sustained = all(c["rc"] == 0 and (num(c.get("pairs_per_s")) or 0) >= 0.95 * rate
                            and not num(c.get("lost")) for c in clients)
            r = {"runs": len(wins), "cpu_us_per_pair": per, "cpu_us_per_pair_median": median(per),
                 "spread_pct": spread_pct(per), "sustained": sustained,
                 "exact_cpu_us_per_pair": exact, "exact_cpu_us_per_pair_median": median(exact),
                 "exact_spread_pct": spread_pct(exact),
                 "guest_busy_pct": [w.get("guest_busy_pct") for w in wins],
                 "client_pairs_per_s": [num(c.get("pairs_per_s")) for c in clients],
                 "client_lost": [num(c.get("lost")) for c in clients],
                 "rtt_avg_us": [num(c.get("rtt_avg_us")) for c in clients]}
            shift = icount_shift(icount)
            if shift is not None and r["cpu_us_per_pair_median"]:
                # guest time = instructions x 2^shift ns
                r["insn_per_pair_median"] = round(r["cpu_us_per_pair_median"] * 1000.0 / (2 ** shift))
            if shift is not None and r["exact_cpu_us_per_pair_median"]:
                r["exact_insn_per_pair_median"] = round(r["exact_cpu_us_per_pair_median"] * 1000.0 / (2 ** shift))
            res[name] = r
            t.ok(len(wins) >= 1, "%s at %d pairs/s: DUT CPU per pair over %d runs" % (name, rate, a.runs), **r)
            if not sustained:
                t.note("%s did not sustain %d pairs/s in every run (client pairs/s %s, lost %s)"
                       % (name, rate, r["client_pairs_per_s"], r["client_lost"]))
        base = (res.get("kernel_udp") or {}).get("cpu_us_per_pair_median")
        base_x = (res.get("kernel_udp") or {}).get("exact_cpu_us_per_pair_median")
        for name, r in res.items():
            m = r.get("cpu_us_per_pair_median")
            r["ratio_vs_kernel_udp"] = round(base / m, 3) if base and m else None
            m = r.get("exact_cpu_us_per_pair_median")
            r["exact_ratio_vs_kernel_udp"] = round(base_x / m, 3) if base_x and m else None
        user = {k: v for k, v in res.items() if k.startswith("user_") and v.get("cpu_us_per_pair_median")}
        best = min(user, key=lambda k: user[k]["cpu_us_per_pair_median"]) if user else None
        spreads = [r["spread_pct"] for r in res.values() if r.get("spread_pct") is not None]
        xspreads = [r["exact_spread_pct"] for r in res.values() if r.get("exact_spread_pct") is not None]
        t.fig(fixed_rate=res, best_user_mode=best,
              ratio_cpu_per_pair_kernel_udp_vs_best_user=res[best]["ratio_vs_kernel_udp"] if best else None,
              exact_ratio_cpu_per_pair_kernel_udp_vs_best_user=res[best]["exact_ratio_vs_kernel_udp"] if best else None,
              max_spread_pct=max(spreads) if spreads else None,
              exact_max_spread_pct=max(xspreads) if xspreads else None)
        if best:
            t.note("DUT CPU per pair at %d pairs/s: kernel UDP %s us, best user path (%s) %s us: %sx (goal >= 10x)"
                   % (rate, base, best, user[best]["cpu_us_per_pair_median"], res[best]["ratio_vs_kernel_udp"]))

    # -- kernel TCP and RTT through the tunnel ------------------------------------------------
    def rtt_from_peer(self):
        _, kv, _ = self.peer.g("pingstat %s %d 0.05" % (DUT_IP, self.a.ping_count), 120)
        return num(kv.get("rtt_avg_ms")), num(kv.get("ping_loss_pct"))

    def sc_tcp(self, t):
        a = self.a
        if self.kernel_tunnel:
            self.kset(t, "enable=1", "watchdog_us=%d" % a.watchdog_us_run)
        if not getattr(self, "blob_sha", None):
            self.blob(self.peer)
        res = {}
        # TCP peer -> DUT, timed on the peer (the DUT's clock may be icount's)
        _, d = self.tcp(t, "default mode", self.peer, self.dut, DUT_IP, 5040, a.size_mb, a.tcp_timeout)
        rtt, loss = self.rtt_from_peer()
        res["default"] = {"tcp_MBps": d, "rtt_avg_ms": rtt, "ping_loss_pct": loss}
        for i, mode in enumerate(POLL_MODES):
            started, _ = self.start_tunnel(t, "tt%d" % i, mode)
            if not started:
                self.dut.g("tunstop tt%d TERM" % i, 30)
                continue
            _, m = self.tcp(t, "tunnel %s" % mode, self.peer, self.dut, DUT_IP, 5041 + i, a.size_mb, a.tcp_timeout)
            rtt, loss = self.rtt_from_peer()
            self.dut.g("tunstop tt%d TERM" % i, 30)
            self.dut.g("waitping %s 30" % PEER_IP, 60)
            r = {"tcp_MBps": m, "rtt_avg_ms": rtt, "ping_loss_pct": loss,
                 "ratio_tcp_vs_default": round(m / d, 3) if m and d else None,
                 "rtt_added_ms": round(rtt - res["default"]["rtt_avg_ms"], 3)
                 if rtt is not None and res["default"]["rtt_avg_ms"] is not None else None}
            res[mode] = r
        t.fig(tcp=res)
        ratios = [r["ratio_tcp_vs_default"] for r in res.values() if r.get("ratio_tcp_vs_default")]
        t.fig(ratio_tcp_tunnel_vs_default_min=min(ratios) if ratios else None)

    # -- the stock anchor: netmap's bridge, then ours ---------------------------------------------
    def outage(self, pid, sig, cap_ms, want=None, setwd=None):
        """Signal pid on the DUT; the outage as the DUT sees it (probe sig-watch, UDP echo every
        2 ms) and as the peer sees it (probe udp-gap every 2 ms, the peer's clock)."""
        self.peer.run("rm -f /tmp/gap.stop", 10)
        self.peer.g("bg gap /tmp/e/bin/probe udp-gap %s:%d 2 120 /tmp/gap.stop" % (DUT_IP, UDP_ECHO_PORT), 20)
        time.sleep(1)
        opts = ("--sysctl %s " % want if want else "") + ("--set %s " % setwd if setwd else "")
        rc, out = self.dut.run("/tmp/e/bin/probe sig-watch %s %s %d %s--udp %s:%d"
                               % (pid, sig, cap_ms, opts, PEER_IP, UDP_ECHO_PORT), cap_ms // 1000 + 60)
        w = parse_json(out)
        return w

    def gap_after(self):
        """Once the wire works again: the peer's longest gap between UDP echo answers."""
        self.dut.g("waitping %s 60" % PEER_IP, 90)
        time.sleep(1)
        self.peer.run("touch /tmp/gap.stop", 10)
        g = self.bg_json(self.peer, "gap", 30)
        return num(g.get("max_gap_ms"))

    def sc_anchor(self, t):
        a = self.a
        cap = 10000
        if not getattr(self, "blob_sha", None):
            self.blob(self.peer)
        self.dut.run("(/tmp/e/bin/probe udp-echo %d 7200 >/dev/null 2>&1 &)" % UDP_ECHO_PORT, 20)
        res = {"bridge": {}, "emtun": {}}
        rc, _ = self.dut.run("test -x /usr/local/bin/bridge", 10)
        if rc != 0:
            t.ok(False, "/usr/local/bin/bridge is in the image")
        else:
            if self.kernel_tunnel:
                self.kset(t, "enable=0")
            b = res["bridge"]
            for sig in ("KILL", "STOP"):
                self.dut.g("bg br /usr/local/bin/bridge -i netmap:em0 -i netmap:em0^", 20)
                time.sleep(3)
                rc, wkv, _ = self.dut.g("waitping %s 60" % PEER_IP, 90)
                t.ok(rc == 0, "bridge forwards (%s run)" % sig, waitping_s=wkv.get("waitping_s"))
                if sig == "KILL":
                    _, m = self.tcp(t, "through the bridge", self.peer, self.dut, DUT_IP, 5050, a.size_mb,
                                    a.tcp_timeout)
                    b["tcp_MBps"] = m
                    b["rtt_avg_ms"], b["ping_loss_pct"] = self.rtt_from_peer()
                pid = (self.dut.run("cat /tmp/br.pid", 10)[1].strip().splitlines() or ["0"])[-1]
                w = self.outage(pid, sig, cap)
                v = w.get("udp_recover_ms")
                key = "kill9" if sig == "KILL" else "sigstop"
                b[key + "_outage_ms"] = v if v is not None else cap
                b[key + "_capped"] = v is None
                if sig == "STOP":
                    self.dut.run("kill -9 %s; true" % pid, 10)
                self.dut.g("tunwait br 20", 40)
                b[key + "_peer_max_gap_ms"] = self.gap_after()
            t.ok(True, "stock bridge: kill -9 outage %s ms, SIGSTOP outage %s ms%s"
                 % (b["kill9_outage_ms"], b["sigstop_outage_ms"], " (capped)" if b["sigstop_capped"] else ""), **b)
        if not self.kernel_tunnel:
            t.ok(False, "emtun's side needs the kmod-patch kernel")
            t.fig(anchor=res)
            return
        e = res["emtun"]
        self.kset(t, "enable=1", "watchdog_us=%d" % a.watchdog_us_run)
        started, pid = self.start_tunnel(t, "an-k", "adaptive")
        if started:
            w = self.outage(pid, "KILL", 20000, want="%s.state=armed" % SYS)
            e["kill9_outage_ms"] = w.get("udp_recover_ms")
            e["kill9_state_armed_ms"] = w.get("state_ms")
            self.dut.g("tunwait an-k 20", 40)
            e["kill9_peer_max_gap_ms"] = self.gap_after()
        started, pid = self.start_tunnel(t, "an-s", "adaptive")
        if started:
            w = self.outage(pid, "STOP", 20000, want="%s.state=revoked" % SYS, setwd="%s.watchdog_us=10000" % SYS)
            e["sigstop_outage_ms"] = w.get("udp_recover_ms")
            e["sigstop_revoked_ms"] = w.get("state_ms")
            e["sigstop_peer_max_gap_ms"] = self.gap_after()
            self.dut.run("kill -CONT %s" % pid, 10)
            self.dut.g("tunwait an-s 20", 40)
            self.kset(t, "watchdog_us=%d" % a.watchdog_us_run)
        t.ok(e.get("kill9_outage_ms") is not None, "emtun: kill -9 outage %s ms, SIGSTOP (10 ms watchdog) outage %s ms"
             % (e.get("kill9_outage_ms"), e.get("sigstop_outage_ms")), **e)
        b = res["bridge"]
        for key in ("kill9", "sigstop"):
            x, y = num(b.get(key + "_outage_ms")), num(e.get(key + "_outage_ms"))
            res["ratio_%s_outage_bridge_vs_emtun" % key] = round(x / y, 2) if x and y else None
            x, y = num(b.get(key + "_peer_max_gap_ms")), num(e.get(key + "_peer_max_gap_ms"))
            res["ratio_%s_peer_gap_bridge_vs_emtun" % key] = round(x / y, 2) if x and y else None
        t.fig(anchor=res)


def summary(report):
    """The headline figures of a report (what the README table shows), by key."""
    sc = report.get("scenarios", {})
    p = sc.get("pairs", {}).get("figures", {})
    tc = sc.get("tcp", {}).get("figures", {})
    an = sc.get("anchor", {}).get("figures", {}).get("anchor", {})
    out = {"accelerator": report.get("accelerator"), "icount_shift": p.get("icount_shift"),
           "fixed_rate_pairs_per_s": p.get("fixed_rate_pairs_per_s"), "modes": {}}
    for name, _, _ in modes():
        fr = (p.get("fixed_rate") or {}).get(name, {})
        out["modes"][name] = {"saturation_pairs_per_s": (p.get("saturation_pairs_per_s") or {}).get(name),
                              "cpu_us_per_pair": fr.get("cpu_us_per_pair_median"),
                              "spread_pct": fr.get("spread_pct"), "ratio_vs_kernel_udp": fr.get("ratio_vs_kernel_udp"),
                              "exact_cpu_us_per_pair": fr.get("exact_cpu_us_per_pair_median"),
                              "exact_spread_pct": fr.get("exact_spread_pct"),
                              "exact_ratio_vs_kernel_udp": fr.get("exact_ratio_vs_kernel_udp")}
    out["goals"] = {
        "cpu_per_pair_kernel_udp_vs_best_user (>= 10)": p.get("ratio_cpu_per_pair_kernel_udp_vs_best_user"),
        "tcp_tunnel_vs_default_min (>= 0.9)": tc.get("ratio_tcp_tunnel_vs_default_min"),
        "kill9_outage_bridge_vs_emtun (>= 20)": an.get("ratio_kill9_outage_bridge_vs_emtun"),
        "cpu_per_pair_spread_pct_max (<= 5)": p.get("max_spread_pct"),
        "exact_cpu_per_pair_kernel_udp_vs_best_user (>= 10)": p.get("exact_ratio_cpu_per_pair_kernel_udp_vs_best_user"),
        "exact_cpu_per_pair_spread_pct_max (<= 5)": p.get("exact_max_spread_pct"),
    }
    return out


def fmt(v, unit="", nd=1):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return ("%%.%df%%s" % nd) % (v, unit)
    return str(v)


def markdown(report):
    """The README tables of a vm-bench report."""
    s = report.get("summary") or summary(report)
    sc = report.get("scenarios", {})
    p = sc.get("pairs", {}).get("figures", {})
    fr = p.get("fixed_rate") or {}
    rate = p.get("fixed_rate_pairs_per_s")
    out = ["| DUT answers by | pairs/s at saturation | DUT CPU per pair at %s pairs/s (cp_time) | spread | "
           "kernel UDP ÷ mode | DUT CPU per pair (idle-thread runtime) | spread | kernel UDP ÷ mode |" % fmt(rate, nd=0),
           "|---|---|---|---|---|---|---|---|"]
    labels = {"kernel_udp": "kernel UDP, default mode", "user_busy": "user path, busy",
              "user_interval": "user path, interval 1 ms", "user_adaptive": "user path, adaptive",
              "kernel_udp_tunneled": "kernel UDP, tunneled (adaptive)"}
    for name, _, _ in modes():
        m = s["modes"].get(name, {})
        r = fr.get(name, {})
        insn = r.get("insn_per_pair_median")
        out.append("| %s | %s | %s%s%s | %s | %s | %s | %s | %s |" % (
            labels[name], fmt(m.get("saturation_pairs_per_s"), nd=0), fmt(m.get("cpu_us_per_pair"), " µs"),
            " (%s insn)" % fmt(insn, nd=0) if insn else "", "" if r.get("sustained", True) else " (rate not sustained)",
            fmt(m.get("spread_pct"), " %"), fmt(m.get("ratio_vs_kernel_udp"), "×", 2),
            fmt(m.get("exact_cpu_us_per_pair"), " µs"), fmt(m.get("exact_spread_pct"), " %"),
            fmt(m.get("exact_ratio_vs_kernel_udp"), "×", 2)))
    tcp = sc.get("tcp", {}).get("figures", {}).get("tcp") or {}
    an = sc.get("anchor", {}).get("figures", {}).get("anchor") or {}
    br, em = an.get("bridge") or {}, an.get("emtun") or {}
    out += ["", "| kernel traffic through | TCP MB/s | ÷ default | ping RTT ms | RTT added ms |", "|---|---|---|---|---|"]
    for k, label in (("default", "nothing (default mode)"), ("busy", "emtun, busy"), ("interval", "emtun, interval 1 ms"),
                     ("adaptive", "emtun, adaptive")):
        r = tcp.get(k, {})
        out.append("| %s | %s | %s | %s | %s |" % (label, fmt(r.get("tcp_MBps"), nd=2),
                                                  fmt(r.get("ratio_tcp_vs_default"), "×", 2) if k != "default" else "1",
                                                  fmt(r.get("rtt_avg_ms"), nd=3), fmt(r.get("rtt_added_ms"), nd=3)
                                                  if k != "default" else "0"))
    d = tcp.get("default", {})
    out.append("| stock netmap bridge | %s | %s | %s | %s |" % (
        fmt(br.get("tcp_MBps"), nd=2),
        fmt(br["tcp_MBps"] / d["tcp_MBps"], "×", 2) if br.get("tcp_MBps") and d.get("tcp_MBps") else "—",
        fmt(br.get("rtt_avg_ms"), nd=3),
        fmt(br["rtt_avg_ms"] - d["rtt_avg_ms"], nd=3) if br.get("rtt_avg_ms") is not None and d.get("rtt_avg_ms")
        is not None else "—"))
    out += ["", "| outage of the kernel path | stock bridge | emtun | bridge ÷ emtun |", "|---|---|---|---|"]
    for k, label in (("kill9", "kill -9 (DUT's UDP probe, ms)"), ("sigstop", "SIGSTOP (DUT's UDP probe, ms)")):
        cap = " (capped: never came back)" if br.get(k + "_capped") else ""
        out.append("| %s | %s%s | %s | %s |" % (label, fmt(br.get(k + "_outage_ms"), nd=0), cap,
                                               fmt(em.get(k + "_outage_ms"), nd=0),
                                               fmt(an.get("ratio_%s_outage_bridge_vs_emtun" % k), "×", 1)))
        out.append("| %s, as the peer saw it (longest gap, ms) | %s | %s | %s |" % (
            label.split(" (")[0], fmt(br.get(k + "_peer_max_gap_ms"), nd=0), fmt(em.get(k + "_peer_max_gap_ms"), nd=0),
            fmt(an.get("ratio_%s_peer_gap_bridge_vs_emtun" % k), "×", 1)))
    out += ["", "| goal | measured |", "|---|---|"]
    for k, v in s["goals"].items():
        out.append("| %s | %s |" % (k, fmt(v, nd=2)))
    return "\n".join(out) + "\n"


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_vm_args(p, dut_smp=1)
    p.add_argument("--scenarios", default=",".join(BENCH_SCENARIOS))
    p.add_argument("--modes", default=",".join(m[0] for m in modes()))
    p.add_argument("--window", type=int, default=64, help="pairs in flight (the peer's client)")
    p.add_argument("--rate", type=int, default=0, help="fixed offered rate, pairs/s (0: half the slowest saturation)")
    p.add_argument("--runs", type=int, default=5, help="fixed-rate client runs per mode")
    p.add_argument("--burst", type=int, default=1,
                   help="at the fixed rate, pings fall due in bursts of this many (1: evenly spaced)")
    p.add_argument("--sat-secs", type=int, default=10, help="saturation run length (0: no saturation phase)")
    p.add_argument("--sat-skip", type=int, default=1000)
    p.add_argument("--sat-n", type=int, default=4000)
    p.add_argument("--fixed-secs", type=int, default=20)
    p.add_argument("--warm-s", type=float, default=2.0, help="pairs before the CPU window, in seconds of the rate")
    p.add_argument("--tail-s", type=float, default=2.0, help="pairs after the CPU window, in seconds of the rate")
    p.add_argument("--delay-ms", type=int, default=1500, help="the client's pause after its registration")
    p.add_argument("--ping-count", type=int, default=50)
    p.add_argument("--size-mb", type=int, default=20)
    p.add_argument("--tcp-timeout", type=int, default=600)
    p.add_argument("--step-timeout", type=int, default=300)
    p.add_argument("--boot-timeout", type=int, default=900)
    p.add_argument("--tunnel", default="emtunctl", choices=["auto", "emtunctl", "fwd"])
    p.add_argument("--watchdog-us-run", type=int, default=0,
                   help="watchdog_us of the running tunnels (default 10000 with kvm, 2000000 with tcg)")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--table"]:
        # bench.py --table report.json: the README tables
        with open(argv[1]) as f:
            sys.stdout.write(markdown(json.load(f)))
        return 0
    p = build_parser()
    a = p.parse_args(argv)
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    bad = [s for s in a.scenarios if s not in BENCH_SCENARIOS]
    if bad:
        p.error("unknown scenarios %s (have %s)" % (bad, BENCH_SCENARIOS))
    a.modes = [m for m in a.modes.split(",") if m]
    known = [m[0] for m in modes()]
    if [m for m in a.modes if m not in known]:
        p.error("unknown modes (have %s)" % known)
    if "kernel_udp" not in a.modes:
        a.modes.insert(0, "kernel_udp")  # every ratio is against it
    if a.icount is not None and a.accel != "tcg":
        p.error("--icount needs --accel tcg")
    harness.settle(a)
    r = Bench(a)
    r.report["kind"] = "vm-bench"
    r.report["icount_shift"] = a.icount
    harness.run_and_kill(r)
    rep = r.report
    rep["summary"] = summary(rep)
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(rep, f, indent=2, sort_keys=True)
    print(json.dumps(rep["summary"], indent=2, sort_keys=True))
    # a benchmark: it fails only when a scenario produced no figure at all
    empty = [n for n, s in rep["scenarios"].items() if not s.get("figures")]
    print("vm-bench: %d scenarios, %s without figures" % (len(rep["scenarios"]), ", ".join(empty) or "none"))
    print("report: %s/report.json" % a.out)
    return 1 if empty or not rep["scenarios"] else 0


if __name__ == "__main__":
    sys.exit(main())
