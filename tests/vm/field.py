"""Issue 13's field cases F1..F9 as scenarios of the two-VM harness (tests/vm/README.md, "Field
cases"). A mixin of harness.Run: the scenarios use its VMs, Tap and helpers (start_tunnel, kset,
kstate, watchdog_once, ...) and the guest helpers of guest/g.sh.

Bed: DUT em0 198.18.0.1, peer em0 198.18.0.2; the DUT's tunnel is `emtunctl run em0 --claim
0x88b5` (g.sh tun) unless a case says otherwise. "TX" is a TCP transfer of the blob (SIZE_MB,
20 for the issue's TX20) with the sha256 compared at both ends.

harness.py imports this module and sets H to itself (no circular import).
"""
import json
import re
import time

H = None  # the harness module (constants, parsers), set by harness.py

FIELD_SCENARIOS = ["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"]
F4_SIZES = (56, 960, 981, 982, 983, 1000, 1024, 1100, 1400, 1472)
# netstat -s -p ip counters (g.sh ipstat keys) that count bad input
IP_ERR = re.compile(r"^ip\.(with_|bad|.*dropped|.*incorrect|.*malformed|.*too_long|.*invalid)")
ICMP_LINE = re.compile(r"IP (\S+) > (\S+): ICMP echo (request|reply), id (\d+), seq (\d+)")


def loss0(kv):
    return kv.get("ping_loss_pct") in ("0.0", "0")


F2_BLAST = 20000  # small kernel datagrams in F2's forced host-queue overflow


def lost0_sigint(kv):
    """No reply missing from a ping ended by SIGINT: none before the last one answered, and at most
    the one request sent just before the signal after it."""
    tx, last = H.num(kv.get("ping_tx")), H.num(kv.get("ping_last_seq"))
    return (kv.get("ping_lost_before_last") == "0" and tx is not None and last is not None
            and tx - 1 - last <= 1)


def ints(kv, prefix=""):
    return {k[len(prefix):]: int(H.num(v, 0)) for k, v in kv.items() if k.startswith(prefix) and H.num(v) is not None}


def ip_errors(before, after):
    """Deltas of the IP input error counters (g.sh ipstat) that changed."""
    keys = [k for k in set(before) | set(after) if IP_ERR.match(k)]
    return {k: int(H.num(after.get(k), 0) - H.num(before.get(k), 0)) for k in sorted(keys)
            if H.num(after.get(k), 0) != H.num(before.get(k), 0)}


def status_column(text, column, iface="em0"):
    """A column of `emtunctl status`'s table (aligned columns; a cell may hold spaces), read at
    the header's offset. None when the table or the row is missing."""
    lines = [l[5:] if l.startswith("out: ") else l for l in text.splitlines()]
    head = next((l for l in lines if l.startswith("IFACE") and column in l.split()), None)
    row = next((l for l in lines if l.split()[:1] == [iface]), None)
    if head is None or row is None:
        return None
    i = head.index(" " + column + " ") + 1 if (" " + column + " ") in head else head.index(" " + column) + 1
    cell = row[i:].split()
    return cell[0] if cell else None


def watch_drops(text):
    """The DROP deltas ("+N") of `emtunctl watch`'s lines (the header repeats; "total" rows are
    absolute and skipped)."""
    out, col = [], None
    for line in text.splitlines():
        f = line.split()
        if f[:1] == ["TIME"] and "DROP" in f:
            col = f.index("DROP")
        elif col is not None and len(f) > col and f[0] != "total" and f[col].startswith("+"):
            out.append(int(H.num(f[col][1:], 0)))
    return out


def parse_icmp(text):
    """tcpdump -n lines of ICMP echo: [(src, dst, kind, id, seq)]."""
    return [(m.group(1), m.group(2), m.group(3), int(m.group(4)), int(m.group(5)))
            for m in (ICMP_LINE.search(l) for l in text.splitlines()) if m]


def icmp_check(pkts, want_each_way):
    """F6: every echo (both directions) seen once as request and once as reply, the reply after
    its request, the sequence numbers of each direction in order. Returns (problems, counts)."""
    problems = []
    req = [p for p in pkts if p[2] == "request"]
    rep = [p for p in pkts if p[2] == "reply"]
    seen = {}
    for i, (src, dst, kind, ident, seq) in enumerate(pkts):
        # the key of an exchange: who pinged whom, with which id and seq
        pinger = src if kind == "request" else dst
        key = (pinger, ident, seq, kind)
        if key in seen:
            problems.append("duplicate %s %s seq %d" % (kind, pinger, seq))
        seen[key] = i
    for (pinger, ident, seq, kind), i in seen.items():
        if kind == "request":
            j = seen.get((pinger, ident, seq, "reply"))
            if j is None:
                problems.append("no reply to %s seq %d" % (pinger, seq))
            elif j < i:
                problems.append("reply before request: %s seq %d" % (pinger, seq))
        elif (pinger, ident, seq, "request") not in seen:
            problems.append("reply without request: %s seq %d" % (pinger, seq))
    for pinger in {p[0] for p in req}:
        seqs = [p[4] for p in req if p[0] == pinger]
        if seqs != sorted(seqs):
            problems.append("requests of %s out of order: %s" % (pinger, seqs))
    counts = {"requests": len(req), "replies": len(rep)}
    if len(req) != 2 * want_each_way or len(rep) != 2 * want_each_way:
        problems.append("want %d requests and %d replies" % (2 * want_each_way, 2 * want_each_way))
    return problems, counts


def answered_after(seqs, count, interval, after_s):
    """pingseq: echo requests sent at or after after_s that got no answer."""
    got = {int(s) for s in seqs.split(",") if s.strip().isdigit()} if seqs else set()
    first = int(round(after_s / interval))
    return [s for s in range(first, count) if s not in got]


class Field:
    """Scenarios f1..f9 (issue 13); see the module docstring."""

    # -- helpers ----------------------------------------------------------------------------------
    def f_arm(self, t):
        if self.kernel_tunnel:
            self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run, "enable=1", "stats.reset=1")

    def f_dnew(self, vm, mark, tail=40):
        """Kernel messages since `g.sh dmark mark`: (counts, new lines)."""
        _, kv, out = vm.g("dnew %s %d" % (mark, tail), 60)
        lines = [l.strip()[len("dmesg: "):] for l in out.splitlines() if l.strip().startswith("dmesg: ")]
        return kv, lines

    def f_alive(self, name):
        """The background tunnel NAME has not exited."""
        return self.dut.run("test ! -f /tmp/%s.rc" % name, 10)[0] == 0

    def f_blob(self, vm):
        _, kv, _ = vm.g("mkblob %d" % self.a.size_mb, 300)
        return kv.get("blob_sha256")

    def f_tx(self, t, label, sender, receiver, dst_ip, port, sha):
        """TX: /tmp/blob from sender to receiver, sha256 compared."""
        tmo = self.a.tcp_timeout
        receiver.g("rx %d %d" % (port, tmo + 30), 30)
        rc, kv, _ = sender.g("tx %s %d %d" % (dst_ip, port, tmo), tmo + 30)
        _, rkv, _ = receiver.g("rxres %d 60" % port, 90)
        secs = H.num(kv.get("tx_s"))
        good = rc == 0 and sha is not None and rkv.get("rx_sha256") == sha
        t.ok(good, "%s: TCP %d MB, sha256 equal" % (label, self.a.size_mb), tx_rc=kv.get("tx_rc"), seconds=secs,
             MB_per_s=round(self.a.size_mb / secs, 2) if secs else None, sent_sha256=sha,
             received_sha256=rkv.get("rx_sha256"))
        return good

    def f_devd(self, name):
        """Start a devd event log (probe devwatch) into /tmp/NAME.log."""
        self.dut.g("bg %s /tmp/e/bin/probe devwatch 1800" % name, 20)

    def f_devd_lines(self, name):
        self.dut.run("kill $(cat /tmp/%s.pid) 2>/dev/null; true" % name, 10)
        _, out = self.dut.run("grep 'type=TUNNEL' /tmp/%s.log | sed 's/^[0-9]* //'" % name, 20)
        return [l.strip() for l in out.splitlines() if "type=TUNNEL" in l]

    def f_kernel_path(self, t, label, secs=10):
        """The invariant of issue 13: whatever the state, the kernel path answers."""
        rc, kv, _ = self.dut.g("waitping %s %d" % (H.PEER_IP, secs), secs * 2 + 30)
        st = self.kstate()
        t.ok(rc == 0, "%s: kernel ping answers (state %s)" % (label, st.get("k.state")),
             waitping_s=kv.get("waitping_s"), state=st.get("k.state"), owner_pid=st.get("k.owner_pid"))
        return rc == 0, st

    # -- F1 ---------------------------------------------------------------------------------------
    def sc_f1(self, t):
        """F1: RX ring full under load: pkt-gen floods the DUT (60-byte broadcast UDP, 200 kpps),
        then a 1472-byte ping flood from the peer."""
        n = self.a.f1_pkts
        if self.a.accel == "tcg" and n < 2000000:
            t.note("TCG: pkt-gen -n %d instead of the issue's 2000000 (F1_PKTS)" % n)
        rc, out = self.peer.run("command -v pkt-gen", 10)
        if not t.ok(rc == 0, "pkt-gen is in the image", path=out.strip()):
            return
        self.f_arm(t)
        self.dut.g("dmark f1", 30)
        started, pid = self.start_tunnel(t, "f1t", "default")
        if not started:
            return
        k0 = self.kstate()
        _, n0, _ = self.dut.g("nicstat", 30)
        rc, pg, pout = self.peer.g("pktgen %d 200000 60 %d" % (n, n // 10000 + 240), n // 10000 + 300)
        sent = int(H.num(pg.get("pktgen_sent"), 0))
        t.ok(sent > 0, "peer: pkt-gen -f tx -l 60 -R 200000 -n %d" % n, rc=pg.get("pktgen_rc"), sent=sent,
             secs=pg.get("pktgen_secs"), speed=pg.get("pktgen_speed"))
        time.sleep(2)
        mid = self.kstate()
        _, n1, _ = self.dut.g("nicstat", 30)
        alive = self.f_alive("f1t")
        t.ok(alive and mid.get("k.state") == "tunneled" and mid.get("k.owner_pid") == pid,
             "after the flood: the tunnel is alive and tunneled by it", state=mid.get("k.state"),
             owner_pid=mid.get("k.owner_pid"), pid=pid, alive=alive)
        # where the frames went: the kernel (host_in), NIC misses, counted drops
        d = {k: int(H.num(n1.get(k), 0) - H.num(n0.get(k), 0)) for k in n1 if H.num(n1.get(k)) is not None}
        host_in = int(H.num(mid.get("k.stats.host_in"), 0) - H.num(k0.get("k.stats.host_in"), 0))
        missed = sum(d.get(k, 0) for k in ("nic.missed_packets", "nic.recv_no_buff", "nic.rx_overruns"))
        idrop = int(H.num(mid.get("if.idrop"), 0) - H.num(k0.get("if.idrop"), 0))
        ipin = d.get("ip.total_packets_received", 0)
        # peer: the wire is back once pkt-gen has closed the port
        self.peer.g("waitping %s 60" % H.DUT_IP, 90)
        _, pn0, _ = self.peer.g("nicstat", 30)
        rc, fl, _ = self.peer.g("flood %s 5000 1472 600" % H.DUT_IP, 660)
        _, pn1, _ = self.peer.g("nicstat", 30)
        _, n2, _ = self.dut.g("nicstat", 30)
        k2 = self.kstate()
        # from the counts: ping(8) rounds its percentage to one decimal (4 of 5000 prints 0.1 %)
        ftx, frx = H.num(fl.get("ping_tx")), H.num(fl.get("ping_rx"))
        loss = round(100.0 * (ftx - frx) / ftx, 3) if ftx and frx is not None else None
        # the 1-vCPU peer's own ping socket can overflow under TCG (its IP layer took every reply,
        # ping counted fewer): then what the network lost is what the peer's IP layer never got
        got = H.num(pn1.get("ip.packets_for_this_host"), 0) - H.num(pn0.get("ip.packets_for_this_host"), 0)
        wire = round(100.0 * (ftx - min(got, ftx)) / ftx, 3) if ftx else None
        t.ok(loss is not None and (loss < 0.1 or (wire is not None and wire < 0.1)),
             "peer: ping -f -c 5000 -s 1472 into the DUT loses < 0.1 % (ping's count, or, beyond it, the replies "
             "that never reached the peer's IP layer)", loss_pct=loss, wire_loss_pct=wire, peer_ip_delivered=int(got),
             ping_says=fl.get("ping_loss_pct"), tx=fl.get("ping_tx"), rx=fl.get("ping_rx"),
             rtt_avg_ms=fl.get("rtt_avg_ms"))
        t.fig(f1_flood_wire_loss_pct=wire)
        flood_d = {"dut": {k: int(H.num(n2.get(k), 0) - H.num(n1.get(k), 0)) for k in n2
                           if H.num(n2.get(k)) is not None and H.num(n2.get(k), 0) != H.num(n1.get(k), 0)},
                   "peer": {k: int(H.num(pn1.get(k), 0) - H.num(pn0.get(k), 0)) for k in pn1
                            if H.num(pn1.get(k)) is not None and H.num(pn1.get(k), 0) != H.num(pn0.get(k), 0)},
                   "dut_kernel": {x: int(H.num(k2.get("k.stats." + x), 0) - H.num(mid.get("k.stats." + x), 0))
                                  for x in ("host_in", "host_out", "host_drop")}}
        t.note("ping flood phase, counter deltas: %s" % json.dumps(flood_d, sort_keys=True)[:1500])
        end = self.kstate()
        alive = self.f_alive("f1t")
        t.ok(alive and end.get("k.state") == "tunneled" and end.get("k.owner_pid") == pid,
             "after the ping flood: still tunneled by the same process", state=end.get("k.state"), alive=alive)
        _, skv, sout = self.dut.g("tunstop f1t TERM", 60)
        app = H.parse_app_stats(sout)
        dropped = app.get("dropped", 0)
        unacc = sent - host_in - missed - idrop - dropped
        dm, lines = self.f_dnew(self.dut, "f1")
        t.ok(dm.get("dm_ring") == "0", "dmesg: no fail 'head', netmap_ring_reinit or bad buf_idx",
             lines=[l for l in lines if "head" in l or "reinit" in l or "buf_idx" in l][:10], count=dm.get("dm_ring"))
        t.ok(not app.get("bad_buf_idx"), "tunnel: no bad buffer index", app=app)
        t.ok(sent > 0 and unacc <= max(16, sent // 1000),
             "losses show up as NIC misses or counted drops (sent - kernel host_in - misses - drops <= 0.1 %)",
             sent=sent, kernel_host_in=host_in, ip_input=ipin, nic_missed=missed, if_idrop=idrop,
             tunnel_dropped=dropped, unaccounted=unacc)
        t.ok(skv.get("exit_rc") == "0", "tunnel exits 0 on SIGTERM", exit_rc=skv.get("exit_rc"))
        if missed > sent - host_in >= 0:
            t.note("NIC misses (%d) exceed the frames not received (%d): QEMU's e1000 model counts MPC/RNBC at every "
                   "delivery attempt while the RX ring is full, not once per frame" % (missed, sent - host_in))
        t.fig(f1_flood_phase=flood_d, f1_not_received=sent - host_in,
              f1_not_received_pct=round(100.0 * (sent - host_in) / sent, 2) if sent else None)
        t.fig(f1_pkts=n, f1_sent=sent, f1_pktgen_speed=pg.get("pktgen_speed"), f1_kernel_host_in=host_in,
              f1_ip_input=ipin, f1_nic_missed=missed, f1_if_idrop=idrop, f1_tunnel_dropped=dropped,
              f1_unaccounted=unacc, f1_nic_deltas={k: v for k, v in d.items() if v}, f1_flood_loss_pct=loss,
              f1_app=app)

    # -- F2 ---------------------------------------------------------------------------------------
    def f_host_drop_views(self):
        """em0's host_drop as `emtunctl status` (its HOST_DROP column) and `status --json` show it,
        as strings (None where missing)."""
        _, _, out = self.dut.g("ctl status em0", 40)
        _, jout = self.dut.run("timeout 20 /tmp/e/bin/emtunctl status --json", 40)
        js = H.parse_json_any(jout)
        rec = next((r for r in js.get("interfaces", []) if r.get("name") == "em0"), {}) if isinstance(js, dict) else {}
        jd = (rec.get("stats") or {}).get("host_drop")
        return status_column(out, "HOST_DROP"), None if jd is None else str(jd)

    def sc_f2(self, t):
        """F2: host RX overflow under outbound load: pingpong server as the DUT's tunnel, the peer's
        client at full speed, ping -f -s 1472 from the DUT and TX, all at once."""
        if not self.have.get("pingpong"):
            t.ok(False, "pingpong example is on the data disk")
            return
        self.f_arm(t)
        sha = self.f_blob(self.dut)
        rc, kv, out = self.dut.g("tunstart f2s /tmp/e/bin/pingpong em0 --role server --count 0 --timeout 3600 "
                                 "--ethertype %s" % H.ETHERTYPE, 60)
        if not t.ok(rc == 0 and kv.get("state") == "tunneled", "pingpong server is the DUT's tunnel",
                    state=kv.get("state"), pid=kv.get("pid")):
            t.note(out.strip()[-500:])
            return
        self.dut.g("waitping %s 30" % H.PEER_IP, 60)
        k0 = self.kstate()
        _, dn0, _ = self.dut.g("nicstat", 30)
        _, pn0, _ = self.peer.g("nicstat", 30)
        tmo = self.a.tcp_timeout
        self.peer.g("bg f2c /tmp/e/bin/pingpong em0 --role client --peer %s --ethertype %s --busy --window 64 "
                    "--count 100000000 --timeout %d" % (H.DUT_MAC, H.ETHERTYPE, tmo), 30)
        time.sleep(2)
        self.dut.g("waitping %s 30" % H.PEER_IP, 60)
        self.dut.g("bgflood f2f %s 10000000 1472" % H.PEER_IP, 20)
        t0 = time.monotonic()
        good = self.f_tx(t, "TX beside the pingpong client and a ping flood", self.dut, self.peer, H.PEER_IP,
                         5060, sha)
        load_s = round(time.monotonic() - t0, 1)
        client_running = self.peer.run("test ! -f /tmp/f2c.rc", 10)[0] == 0
        # the load ends: the peer's client (its close resets the peer's NIC), then in one guest
        # command the DUT's flood (SIGINT) and at once the 0.1 s ping
        self.peer.run("kill -INT $(cat /tmp/f2c.pid) 2>/dev/null; true", 10)
        rc, ps, _ = self.dut.g("pingafter %s 30 0.1" % H.PEER_IP, 90)
        lost_after = answered_after(ps.get("ping_seqs"), 30, 0.1, 1.0)
        _, fl, _ = self.dut.g("pingres f2f 30", 60)
        _, dn1, _ = self.dut.g("nicstat", 30)
        _, pn1, _ = self.peer.g("nicstat", 30)
        nic_d = {"dut": {k: int(H.num(dn1.get(k), 0) - H.num(dn0.get(k), 0)) for k in dn1 if k.startswith("nic.")
                         and H.num(dn1.get(k)) is not None and H.num(dn1.get(k), 0) != H.num(dn0.get(k), 0)},
                 "peer": {k: int(H.num(pn1.get(k), 0) - H.num(pn0.get(k), 0)) for k in pn1 if k.startswith("nic.")
                          and H.num(pn1.get(k)) is not None and H.num(pn1.get(k), 0) != H.num(pn0.get(k), 0)}}
        t.note("NIC counter deltas over the load: %s" % json.dumps(nic_d, sort_keys=True)[:1500])
        _, ck, cout = self.peer.g("tunwait f2c 30", 60)
        pp = H.parse_pingpong(cout)
        mid = self.kstate()
        col, jdrop = self.f_host_drop_views()
        kdrop = int(H.num(mid.get("k.stats.host_drop"), 0) - H.num(k0.get("k.stats.host_drop"), 0))
        ktotal = mid.get("k.stats.host_drop")
        t.ok(col is not None and col == ktotal and jdrop == ktotal,
             "host drops visible: emtunctl status HOST_DROP = status --json = dev.em.0.tunnel.stats.host_drop",
             status_column=col, json=jdrop, sysctl=ktotal, delta=kdrop)
        if kdrop == 0:
            t.note("no host drop happened in this run (stats.host_drop +0): the overflow was not reached")
        t.ok(not lost_after, "ping 0 % loss from 1 s after the load ends (30 x 0.1 s, started as the flood ended)",
             lost_seqs=lost_after, answered=ps.get("ping_seqs"), loss_pct=ps.get("ping_loss_pct"))
        st_ok = mid.get("k.state") == "tunneled" and self.f_alive("f2s")
        t.ok(st_ok, "pingpong server still tunneled after the load", state=mid.get("k.state"))
        # beyond the load (which does not overflow the host ring under TCG): kernel UDP
        # from the DUT as fast as it goes, the tunnel stopped for 0.5 s of it so that the host
        # queue overflows; then the same visibility and recovery checks
        self.dut.g("bg f2w /tmp/e/bin/emtunctl watch em0 --interval 500ms --count 40", 20)
        _, ub, _ = self.dut.g("udpblast %d %s 0.5" % (F2_BLAST, kv.get("pid")), 180)
        self.dut.g("tunwait f2w 40", 70)
        _, wout = self.dut.run("cat /tmp/f2w.log", 30)
        wd = watch_drops(wout)
        rc, ps2, _ = self.dut.g("pingseq %s 30 0.1" % H.PEER_IP, 90)
        lost2 = answered_after(ps2.get("ping_seqs"), 30, 0.1, 1.0)
        end = self.kstate()
        col2, jdrop2 = self.f_host_drop_views()
        kdrop2 = int(H.num(end.get("k.stats.host_drop"), 0) - H.num(mid.get("k.stats.host_drop"), 0))
        t.ok(kdrop2 > 0 and col2 == end.get("k.stats.host_drop") and jdrop2 == end.get("k.stats.host_drop"),
             "host queue overflow (kernel UDP as fast as it goes, the tunnel stopped 0.5 s): host_drop +%d, "
             "the same in emtunctl status, status --json and the sysctl" % kdrop2, status_column=col2,
             json=jdrop2, sysctl=end.get("k.stats.host_drop"), udp_sent=ub.get("udp_sent"), udp_s=ub.get("udp_s"))
        t.ok(sum(wd) == kdrop2 and any(d > 0 for d in wd), "emtunctl watch shows the rising DROP (+N per line, "
             "summing to the sysctl's increase)", deltas=[d for d in wd if d], total=sum(wd), sysctl_delta=kdrop2)
        t.ok(end.get("k.state") == "tunneled" and self.f_alive("f2s") and not lost2,
             "after the overflow: still tunneled, ping 0 % loss from 1 s after", state=end.get("k.state"),
             lost_seqs=lost2)
        t.fig(f2_blast_host_drop=kdrop2, f2_blast_host_out=int(H.num(end.get("k.stats.host_out"), 0)
                                                                - H.num(mid.get("k.stats.host_out"), 0)))
        _, skv, sout = self.dut.g("tunstop f2s TERM", 60)
        t.note("pingpong server: %s" % " | ".join(sout.strip().splitlines()[-4:])[:400])
        t.fig(f2_host_drop=kdrop, f2_host_drop_status_col=col, f2_load_s=load_s, f2_ping_flood_loss_pct=H.num(fl.get("ping_loss_pct")),
              f2_ping_flood_tx=H.num(fl.get("ping_tx")), f2_client_pairs=pp.get("pairs"),
              f2_client_pairs_per_s=pp.get("pairs_per_s"), f2_client_covered_tx=client_running,
              f2_host_out=int(H.num(mid.get("k.stats.host_out"), 0) - H.num(k0.get("k.stats.host_out"), 0)),
              f2_ping_after_lost=lost_after, f2_tx_ok=good, f2_nic_deltas=nic_d)

    # -- F3 ---------------------------------------------------------------------------------------
    def f_mtu_both(self, mtu):
        for vm in (self.dut, self.peer):
            vm.run("ifconfig em0 mtu %d" % mtu, 30)

    def sc_f3(self, t):
        """F3: jumbo MTU (start at 9000: refusal or, with dev.netmap.buf_size=9216, full service),
        MTU changes mid-run, and the issue's reconfiguration sequence while tunneled."""
        self.f_arm(t)
        _, nm0, _ = self.dut.g("nmparams", 30)
        self.dut.g("dmark f3", 30)
        self.f_devd("f3devd")
        try:
            self.f3_jumbo(t, nm0)
            self.f3_midrun(t)
            self.f3_reconfig(t)
        finally:
            if self.dut.alive() and not self.dut.crashed:
                self.dut.g("tunstop f3t TERM", 60)
                self.dut.run("ifconfig vlan100 destroy 2>/dev/null; ifconfig em0 -txcsum; true", 20)
                self.f_mtu_both(1500)
                self.dut.run("sysctl dev.netmap.buf_size=%s dev.netmap.buf_num=%s; true"
                             % (nm0.get("buf_size", 2048), nm0.get("buf_num", 163840)), 20)
        dm, lines = self.f_dnew(self.dut, "f3", 80)
        ev = self.f_devd_lines("f3devd")
        t.note("devd TUNNEL events: %s" % json.dumps(ev)[:1500])
        t.note("dmesg (netmap lines): %s" % json.dumps([l for l in lines if "netmap" in l][-20:])[:2500])
        t.ok(any("reason=refused_mtu" in e for e in ev), "devd: a TUNNEL event with reason=refused_mtu", events=len(ev))
        t.ok(any("reason=reconfig" in e for e in ev), "devd: a TUNNEL event with reason=reconfig", events=len(ev))
        t.ok(dm.get("dm_ring") == "0", "dmesg: no ring errors", count=dm.get("dm_ring"))
        t.fig(f3_devd_events=ev, f3_dmesg_refused_mtu=H.num(dm.get("dm_refused_mtu")),
              f3_dmesg_reconfig=H.num(dm.get("dm_reconfig")), f3_dmesg_reconfig_revoke=H.num(dm.get("dm_reconfig_revoke")))

    def f3_pings(self, t, label, size):
        _, d0, _ = self.dut.g("ipstat", 30)
        _, a, _ = self.dut.g("pingsz %s 5 %d" % (H.PEER_IP, size), 60)
        _, b, _ = self.peer.g("pingsz %s 5 %d" % (H.DUT_IP, size), 60)
        _, d1, _ = self.dut.g("ipstat", 30)
        good = loss0(a) and loss0(b)
        t.ok(good, "%s: %d-byte pings (-D) both ways, 0 %% loss" % (label, size),
             dut_to_peer=a.get("ping_loss_pct"), peer_to_dut=b.get("ping_loss_pct"), dut_ip_errors=ip_errors(d0, d1),
             dut_ip_received=int(H.num(d1.get("ip.total_packets_received"), 0) - H.num(d0.get("ip.total_packets_received"), 0)))
        return good

    def f3_jumbo(self, t, nm0):
        self.f_mtu_both(9000)
        _, s, _ = self.dut.g("ifstate", 30)
        t.ok(s.get("mtu") == "9000", "ifconfig em0 mtu 9000 on both VMs", dut_mtu=s.get("mtu"))
        self.dut.g("waitping %s 30" % H.PEER_IP, 60)
        # 1. default buffers (2048): the registration is refused, with a message naming the cause
        rc, kv, out = self.dut.g("tun f3t default", 60)
        msg = " | ".join(l.strip()[5:] for l in out.splitlines() if l.strip().startswith("log: "))
        if kv.get("state") == "tunneled" and not kv.get("exited_rc"):
            t.ok(False, "start at MTU 9000 with %s-byte netmap buffers: refused" % nm0.get("buf_size"),
                 state=kv.get("state"))
            self.f3_pings(t, "tunneled at MTU 9000 with default buffers", 8000)
            self.dut.g("tunstop f3t TERM", 60)
        else:
            named = re.search(r"buf.?size|mtu|MOREFRAG", msg, re.I) is not None
            t.ok(named, "start at MTU 9000 with %s-byte buffers: refused, the message names the cause"
                 % nm0.get("buf_size"), exit_rc=kv.get("exited_rc"), message=msg[-600:])
            t.fig(f3_refusal_message=msg[-600:])
            st = self.kstate()
            t.ok(st.get("k.state") == "armed", "after the refusal: state armed", state=st.get("k.state"))
            self.dut.g("waitping %s 30" % H.PEER_IP, 60)
            t.fig(f3_default_mode_9000_ok=self.f3_pings(t, "default mode at MTU 9000", 8000))
        # 2. dev.netmap.buf_size=9216 (fewer buffers: 9216 x buf_num must fit the VM)
        self.dut.run("sysctl dev.netmap.buf_size=9216 dev.netmap.buf_num=8192", 20)
        kv, out = self.f3_slow_start(t)
        _, nm, _ = self.dut.g("nmparams", 30)
        if kv.get("state") != "tunneled" or kv.get("exited_rc"):
            msg = " | ".join(l.strip()[5:] for l in out.splitlines() if l.strip().startswith("log: "))
            t.note("with dev.netmap.buf_size=9216 the tunnel did not start: %s" % msg[-500:])
            t.fig(f3_bufsize_9216="refused", f3_bufsize_9216_message=msg[-500:])
            self.f_kernel_path(t, "buf_size 9216 refusal")
        else:
            t.ok(True, "buf_size 9216: tunneled at MTU 9000", buf_curr_size=nm.get("buf_curr_size"), pid=kv.get("pid"))
            self.dut.g("waitping %s 30" % H.PEER_IP, 60)
            p = self.f3_pings(t, "tunneled, MTU 9000, buf_size 9216", 8000)
            sha = self.f_blob(self.dut)
            x = self.f_tx(t, "tunneled at MTU 9000", self.dut, self.peer, H.PEER_IP, 5061, sha)
            t.fig(f3_bufsize_9216="tunneled", f3_9000_pings_ok=p, f3_9000_tx_ok=x)
            # mid-run changes under 9216-byte buffers: smaller (applied), 9000 (fits), 9216 (does not)
            for mtu, want in ((1500, "applied"), (9000, "applied"), (9216, "refused")):
                self.f3_change(t, "f3t", mtu, want, 8000 if mtu == 9000 else 56)
            self.dut.g("tunstop f3t TERM", 60)
        self.dut.run("sysctl dev.netmap.buf_size=%s dev.netmap.buf_num=%s"
                     % (nm0.get("buf_size", 2048), nm0.get("buf_num", 163840)), 20)
        self.f_mtu_both(1500)
        self.dut.g("waitping %s 30" % H.PEER_IP, 60)

    def f3_slow_start(self, t, secs=150):
        """Start the tunnel in the background and watch it from outside: the open under 9216-byte
        buffers was seen to block the console for a minute (tunnel state sysctls wait for netmap's
        lock). Returns (kv like g.sh tun, log)."""
        cmd = "/tmp/e/bin/emtunctl run em0 --claim %s" % H.ETHERTYPE if self.have.get("emtunctl") else \
            "/tmp/e/bin/fwd em0 --claim %s" % H.ETHERTYPE
        _, b, _ = self.dut.g("bg f3t " + cmd, 20)
        pid = b.get("pid")
        t0, seen, opened, exited = time.monotonic(), [], None, None
        while time.monotonic() - t0 < secs:
            rc, out = self.dut.run("test -f /tmp/f3t.rc && echo EXITED=$(cat /tmp/f3t.rc); grep -c Ctrl-C /tmp/f3t.log; "
                                   "ps -o stat= -o wchan= -o time= -p %s; procstat -kk %s 2>/dev/null | tail -1" % (pid, pid), 30)
            el = round(time.monotonic() - t0, 1)
            lines = [l.strip() for l in out.splitlines() if l.strip()]
            if any(l.startswith("EXITED=") for l in lines):
                exited = next(l for l in lines if l.startswith("EXITED="))[7:]
                break
            if lines and lines[0].isdigit() and int(lines[0]) > 0:
                opened = el
                break
            seen.append("%.1fs: %s" % (el, " | ".join(lines[1:])[:300]))
            time.sleep(3)
        t.fig(f3_bufsize_open_s=opened, f3_bufsize_open_watch=seen[:12])
        if seen:
            t.note("tunnel open under 9216-byte buffers, watched (ps stat/wchan/time, procstat -kk): %s"
                   % json.dumps(seen[:8])[:2000])
        _, w, log = self.dut.g("tunwait f3t 0", 30)
        if exited is not None or w.get("exit_rc") not in (None, "running"):
            return {"pid": pid, "state": "exited", "exited_rc": exited or w.get("exit_rc")}, log
        if opened is None:
            t.ok(False, "buf_size 9216: the tunnel opens within %d s" % secs, watch=seen[-3:])
            self.dut.g("tunstop f3t TERM", 60)
            return {"pid": pid, "state": "timeout", "exited_rc": "timeout"}, log
        st = self.kstate()
        return {"pid": pid, "state": st.get("k.state"), "owner_pid": st.get("k.owner_pid")}, log

    def f3_change(self, t, name, mtu, want, psize=56):
        """ifconfig em0 mtu MTU while tunneled: applied (tunnel intact) or refused (EBUSY, old mtu
        kept, tunnel intact); the kernel path works either way."""
        _, s0, _ = self.dut.g("ifstate", 30)
        _, r, _ = self.dut.g("ifc em0 mtu %d" % mtu, 30)
        time.sleep(1)
        _, s1, _ = self.dut.g("ifstate", 30)
        ok_path, _ = self.f_kernel_path(t, "mtu %d" % mtu)
        intact = s1.get("state") == "tunneled" and s1.get("owner_pid") == s0.get("owner_pid") and self.f_alive(name)
        if want == "applied":
            good = r.get("ifc_rc") == "0" and s1.get("mtu") == str(mtu) and intact
        else:
            good = r.get("ifc_rc") != "0" and "busy" in r.get("ifc_err", "").lower() and s1.get("mtu") == s0.get("mtu") \
                and intact
        t.ok(good and ok_path, "mid-run ifconfig em0 mtu %d: %s, tunnel intact (state tunneled, same owner)" % (mtu, want),
             rc=r.get("ifc_rc"), err=r.get("ifc_err"), mtu_before=s0.get("mtu"), mtu_after=s1.get("mtu"),
             state=s1.get("state"), owner_before=s0.get("owner_pid"), owner_after=s1.get("owner_pid"))
        if psize > 56 and ok_path:
            self.f3_pings(t, "after mtu %d" % mtu, psize)
        return good

    def f3_midrun(self, t):
        """At MTU 1500 and the default buffers: mid-run mtu 9000 is refused (EBUSY, refused_mtu)."""
        started, pid = self.start_tunnel(t, "f3t", "default")
        if not started:
            return
        self.f3_change(t, "f3t", 9000, "refused")

    def f3_reconfig(self, t):
        """The issue's sequence on the tunnel of f3_midrun: down/up, txcsum (revoke), mtu 1400,
        vlan child create/destroy."""
        if not self.f_alive("f3t"):
            started, pid = self.start_tunnel(t, "f3t", "default")
            if not started:
                return
        _, s0, _ = self.dut.g("ifstate", 30)
        # down/up: applied, the tunnel stays, the kernel path works again within seconds
        self.dut.run("ifconfig em0 down; ifconfig em0 up", 30)
        ok, st = self.f_kernel_path(t, "down/up", 10)
        t.ok(st.get("k.state") == "tunneled" and st.get("k.owner_pid") == s0.get("owner_pid") and self.f_alive("f3t"),
             "ifconfig em0 down; up: still tunneled by the same process", state=st.get("k.state"),
             owner_pid=st.get("k.owner_pid"))
        # txcsum: revoked with reason=reconfig, the kernel path works
        _, r, _ = self.dut.g("ifc em0 txcsum", 30)
        _, w, _ = self.dut.g("waitnot tunneled 10", 30)
        _, tw, wout = self.dut.g("tunwait f3t 20", 40)
        ok, st = self.f_kernel_path(t, "txcsum")
        t.ok(st.get("k.state") in ("revoked", "armed") and tw.get("exit_rc") not in (None, "running", "0")
             and "revoked" in wout.lower(),
             "ifconfig em0 txcsum: the tunnel is revoked (state revoked/armed), the tunnel exits saying revoked",
             ifc_rc=r.get("ifc_rc"), state=st.get("k.state"), waited_ms=w.get("waitnot_ms"), exit_rc=tw.get("exit_rc"),
             log=wout.strip()[-300:])
        self.dut.run("ifconfig em0 -txcsum", 20)
        self.dut.g("waitstate armed 10", 30)
        # mtu 1400: applied with the tunnel intact
        started, pid = self.start_tunnel(t, "f3t", "default")
        if not started:
            return
        self.f3_change(t, "f3t", 1400, "applied")
        # vlan child: created and destroyed; applied or revoked cleanly, the kernel path works
        for step, cmd in (("create", "ifconfig vlan100 create vlan 100 vlandev em0 && ifconfig vlan100 up"),
                          ("destroy", "ifconfig vlan100 destroy")):
            rc, out = self.dut.run(cmd, 30)
            time.sleep(1)
            ok, st = self.f_kernel_path(t, "vlan100 %s" % step)
            t.ok(rc == 0 and ok and (st.get("k.state") != "tunneled" or self.f_alive("f3t")),
                 "vlan100 %s: applied (state %s), kernel path works" % (step, st.get("k.state")), rc=rc,
                 out=out.strip()[-200:], state=st.get("k.state"))
            t.fig(**{"f3_vlan_%s_state" % step: st.get("k.state")})
        if self.f_alive("f3t"):
            self.f3_change(t, "f3t", 1500, "applied")
        _, skv, _ = self.dut.g("tunstop f3t TERM", 60)

    # -- F4 ---------------------------------------------------------------------------------------
    def sc_f4(self, t):
        """F4: frame sizes around buffer boundaries, both directions, and TX both ways."""
        self.f_arm(t)
        started, pid = self.start_tunnel(t, "f4t", "default")
        if not started:
            return
        _, d0, _ = self.dut.g("ipstat", 30)
        _, p0, _ = self.peer.g("ipstat", 30)
        res = {}
        for size in F4_SIZES:
            _, a, _ = self.dut.g("pingsz %s 5 %d" % (H.PEER_IP, size), 60)
            _, b, _ = self.peer.g("pingsz %s 5 %d" % (H.DUT_IP, size), 60)
            res[size] = {"dut_to_peer": a.get("ping_loss_pct"), "peer_to_dut": b.get("ping_loss_pct")}
        bad = {s: r for s, r in res.items() if r["dut_to_peer"] not in ("0.0", "0") or r["peer_to_dut"] not in ("0.0", "0")}
        t.ok(not bad, "ping -D -s %s both ways: 0 %% loss at every size" % ",".join(map(str, F4_SIZES)), failing=bad)
        sha = self.f_blob(self.dut)
        self.f_tx(t, "TX DUT -> peer", self.dut, self.peer, H.PEER_IP, 5062, sha)
        sha2 = self.f_blob(self.peer)
        self.f_tx(t, "TX peer -> DUT", self.peer, self.dut, H.DUT_IP, 5063, sha2)
        _, d1, _ = self.dut.g("ipstat", 30)
        _, p1, _ = self.peer.g("ipstat", 30)
        ed, ep = ip_errors(d0, d1), ip_errors(p0, p1)
        t.ok(not ed and not ep, "IP input error counters unchanged (netstat -s -p ip) on both VMs", dut=ed, peer=ep)
        st = self.kstate()
        t.ok(st.get("k.state") == "tunneled" and self.f_alive("f4t"), "still tunneled", state=st.get("k.state"))
        _, skv, _ = self.dut.g("tunstop f4t TERM", 60)
        t.fig(f4_loss_pct=res, f4_ip_errors_dut=ed, f4_ip_errors_peer=ep,
              f4_ip_total_dut=int(H.num(d1.get("ip.total_packets_received"), 0) - H.num(d0.get("ip.total_packets_received"), 0)))

    # -- F5 ---------------------------------------------------------------------------------------
    def f_ll6(self):
        for vm in (self.dut, self.peer):
            vm.run("sysctl -q net.inet6.ip6.dad_count=0; ifconfig em0 inet6 -ifdisabled auto_linklocal up; true", 20)
        time.sleep(3)

    def sc_f5(self, t):
        """F5: promiscuous toggles and tcpdump runs while tunneled, under a 0.2 s ping from the peer."""
        self.f_arm(t)
        self.f_ll6()
        have_td = self.dut.run("command -v tcpdump", 10)[0] == 0
        self.dut.run("ifconfig em0 promisc", 10)
        _, s0, _ = self.dut.g("ifstate", 30)
        self.peer.g("bgping f5p %s 3000 0.2" % H.DUT_IP, 20)
        started, pid = self.start_tunnel(t, "f5t", "default")
        if started:
            runs = []
            for i in range(5):
                if have_td:
                    rc, out = self.dut.run("timeout 30 tcpdump -n -i em0 -c 50 >/tmp/f5td.%d 2>&1; echo td_rc=$?; "
                                           "grep -c . /tmp/f5td.%d; tail -3 /tmp/f5td.%d" % (i, i, i), 60)
                    m = re.search(r"(\d+) packets captured", out)
                    runs.append(int(m.group(1)) if m else None)
                self.dut.run("ifconfig em0 -promisc; sleep 0.5; ifconfig em0 promisc", 20)
                st = self.kstate()
                if st.get("k.state") != "tunneled":
                    break
            st = self.kstate()
            t.ok(st.get("k.state") == "tunneled" and self.f_alive("f5t"),
                 "5 x (tcpdump -c 50, promisc off/on) while tunneled: still tunneled", state=st.get("k.state"))
            if have_td:
                t.ok(runs == [50] * 5, "tcpdump -i em0 -c 50 captured 50 packets each time", captured=runs)
            else:
                t.ok(True, "tcpdump runs", skip="tcpdump is not in the image")
            t.fig(f5_tcpdump_captured=runs)
            self.dut.g("tunstop f5t TERM", 60)
            self.dut.g("waitstate armed 10", 30)
        _, s1, _ = self.dut.g("ifstate", 30)
        t.ok(s1.get("flags") == s0.get("flags"), "interface flags after the stop = before the start",
             before=s0.get("flags"), after=s1.get("flags"))
        time.sleep(2)
        self.peer.run("pkill -INT -x ping; true", 10)
        _, pk, _ = self.peer.g("pingres f5p 30", 60)
        t.ok(lost0_sigint(pk), "0.2 s ping from the peer throughout: 0 % loss (no reply missing; the request in "
             "flight at the SIGINT is not a loss)", loss_pct=pk.get("ping_loss_pct"), tx=pk.get("ping_tx"),
             rx=pk.get("ping_rx"), lost_before_last=pk.get("ping_lost_before_last"), last_seq=pk.get("ping_last_seq"),
             max_gap_pkts=pk.get("ping_max_gap_pkts"))
        self.dut.run("ifconfig em0 -promisc", 10)
        rc6, out6 = self.dut.run("ping6 -c 3 -i 0.2 %s" % H.PEER_LL6, 30)
        _, s2, _ = self.dut.g("ifstate", 30)
        t.ok(rc6 == 0 and "PROMISC" not in s2.get("flags", ""), "after leaving promiscuous mode: link-local ping6 works",
             rc=rc6, flags=s2.get("flags"))
        t.fig(f5_flags_before=s0.get("flags"), f5_flags_after=s1.get("flags"), f5_ping_loss_pct=H.num(pk.get("ping_loss_pct")),
              f5_ping_lost_before_last=H.num(pk.get("ping_lost_before_last")),
              f5_ping_tx=H.num(pk.get("ping_tx")))

    # -- F6 ---------------------------------------------------------------------------------------
    def sc_f6(self, t):
        """F6: tcpdump of ICMP on the tunneled port while 10 pings go each way."""
        if self.dut.run("command -v tcpdump", 10)[0] != 0:
            t.ok(True, "tcpdump on the tunneled port", skip="tcpdump is not in the image")
            return
        self.f_arm(t)
        started, pid = self.start_tunnel(t, "f6t", "default")
        if not started:
            return
        self.dut.g("bg f6td timeout -s INT 120 tcpdump -n -l -i em0 icmp", 20)
        time.sleep(3)
        _, a, _ = self.dut.g("pingstat %s 10 0.2" % H.PEER_IP, 60)
        _, b, _ = self.peer.g("pingstat %s 10 0.2" % H.DUT_IP, 60)
        time.sleep(1)
        self.dut.run("kill -INT $(cat /tmp/f6td.pid) 2>/dev/null; true", 10)
        self.dut.g("tunwait f6td 10", 30)
        _, out = self.dut.run("cat /tmp/f6td.log", 30)
        pkts = parse_icmp(out)
        problems, counts = icmp_check(pkts, 10)
        t.ok(loss0(a) and loss0(b), "10 pings each way answered", dut_to_peer=a.get("ping_loss_pct"),
             peer_to_dut=b.get("ping_loss_pct"))
        t.ok(not problems, "tcpdump: 20 requests and 20 replies, each once, in order", problems=problems[:10], **counts)
        t.note("tcpdump: %s" % " | ".join(l.strip() for l in out.splitlines() if "ICMP" in l or "captured" in l)[:3000])
        st = self.kstate()
        t.ok(st.get("k.state") == "tunneled", "still tunneled", state=st.get("k.state"))
        self.dut.g("tunstop f6t TERM", 60)
        t.fig(f6_requests=counts["requests"], f6_replies=counts["replies"], f6_problems=problems[:10])

    # -- F7 ---------------------------------------------------------------------------------------
    def sc_f7(self, t):
        """F7: stop under load (the peer floods pings and sends TCP into the DUT), N cycles of kill -9,
        SIGTERM, admin revoke + SIGTERM; leaks, counters and WITNESS afterwards."""
        if not self.kernel_tunnel:
            t.ok(False, "F7 needs the kmod-patch kernel")
            return
        n = self.a.f7_cycles
        self.f_arm(t)
        ident = (self.dut.run("uname -i", 10)[1].strip().splitlines() or [""])[-1]
        if "DEBUG" not in ident:
            t.note("kernel %s: no WITNESS; the WITNESS check only means something on EMTUN-DEBUG" % ident)
        # one cycle first: netmap keeps the pool it allocates at the first registration
        self.start_tunnel(t, "f7w", "default")
        self.dut.g("tunstop f7w TERM", 60)
        self.dut.g("waitstate armed 10", 30)
        # iflib posts only 128 RX clusters at a (re)init and the rest as frames arrive: receive
        # some traffic first, so that the baseline has the RX ring full, as after the load
        self.dut.g("flood %s 3000 1472 120" % H.PEER_IP, 180)
        self.dut.g("dmark f7", 30)
        time.sleep(1)
        _, l0, _ = self.dut.g("leaks", 60)
        self.dut.run("rm -f /tmp/f7.stop", 10)
        self.dut.g("bg f7sink /tmp/e/bin/probe tcp-sink 5070 3600", 20)
        time.sleep(0.5)
        self.peer.run("rm -f /tmp/f7.stop", 10)
        self.peer.g("bg f7src /tmp/e/bin/probe tcp-src %s:5070 2048 3600 /tmp/f7.stop" % H.DUT_IP, 20)
        self.peer.g("bgflood f7f %s 100000000 56" % H.DUT_IP, 20)
        time.sleep(2)
        t0 = time.monotonic()
        rc, kv, out = self.dut.g('cycles stop "kill9 term adminterm" %d %d 1' % (n, self.a.watchdog_us_run), n * 40 + 120)
        secs = round(time.monotonic() - t0, 1)
        self.peer.run("touch /tmp/f7.stop; pkill -INT -x ping; true", 10)
        _, fl, _ = self.peer.g("pingres f7f 30", 60)
        src = self.bg_json(self.peer, "f7src", 60)
        sink = self.bg_json(self.dut, "f7sink", 60)
        time.sleep(3)
        _, l1, _ = self.dut.g("leaks", 60)
        time.sleep(10)
        _, l2, _ = self.dut.g("leaks", 60)  # a later look: in flight or held
        t.fig(f7_leaks_after_13s=l2)
        k = self.kstate()
        cycles = {kk: v for kk, v in kv.items() if kk.startswith("stop.")}
        bad = [("%s=%s" % (kk, v)) for kk, v in cycles.items() if "armed=1,ping=1" not in v or "rc=running" in v]
        # mbufs/clusters in use after each cycle (under load): a leak grows with the cycles
        mb = [v.split("mbufs=")[1] for kk, v in sorted(cycles.items(), key=lambda x: int(x[0].split(".")[1]))
              if "mbufs=" in v]
        t.fig(f7_mbufs_per_cycle=mb)
        kinds = {}
        for v in cycles.values():
            kinds[v.split(",")[0]] = kinds.get(v.split(",")[0], 0) + 1
        t.ok(len(cycles) == n and not bad, "%d cycles under load (kill -9, SIGTERM, admin revoke + SIGTERM): armed "
             "after each, kernel ping works" % n, cycles=len(cycles), kinds=kinds, failures=bad[:8], seconds=secs)
        t.ok(k.get("k.stats.enter") == k.get("k.stats.exit") and k.get("k.state") == "armed" and k.get("k.owner_pid") == "0",
             "enter == exit, armed, owner_pid 0", enter=k.get("k.stats.enter"), exit=k.get("k.stats.exit"),
             state=k.get("k.state"))
        mb0, mb1 = H.num(l0.get("mbuf_current"), 0), H.num(l1.get("mbuf_current"), 0)
        t.ok(l1.get("netmap_fds") == "0", "no netmap fd left", netmap_fds=l1.get("netmap_fds"))
        # no growth from cycle to cycle either (mbufs after cycle 1 vs after the last)
        first, last = (H.num(mb[1].split("/")[0]) if len(mb) > 1 else None), (H.num(mb[-1].split("/")[0]) if mb else None)
        t.ok(l0.get("vm_netmap_inuse") == l1.get("vm_netmap_inuse") and l0.get("vm_netmap_memuse") == l1.get("vm_netmap_memuse")
             and mb1 <= mb0 * 1.1 + 64 and (first is None or last <= first * 1.1 + 64),
             "netmap malloc and mbufs back to baseline, no growth from cycle to cycle", before=l0, after=l1,
             mbufs_after_cycle_1=first, mbufs_after_last=last)
        dm, lines = self.f_dnew(self.dut, "f7", 20)
        t.ok(dm.get("dm_witness") == "0", "dmesg: no panic, WITNESS or lock order reversal line (kernel %s)" % ident,
             lines=dm.get("dm_witness"), ring=dm.get("dm_ring"))
        t.ok(dm.get("dm_ring") == "0", "dmesg: no ring errors", count=dm.get("dm_ring"))
        t.fig(f7_cycles=len(cycles), f7_kinds=kinds, f7_failures=bad[:8], f7_seconds=secs, f7_kernel=ident,
              f7_enter=H.num(k.get("k.stats.enter")), f7_exit=H.num(k.get("k.stats.exit")),
              f7_revoke_admin=H.num(k.get("k.stats.revoke_admin")), f7_leaks_before=l0, f7_leaks_after=l1,
              f7_peer_flood_loss_pct=H.num(fl.get("ping_loss_pct")), f7_peer_flood_tx=H.num(fl.get("ping_tx")),
              f7_tcp_src=src, f7_tcp_sink=sink)

    # -- F8 ---------------------------------------------------------------------------------------
    def sc_f8(self, t):
        """F8: N restarts of a pingpong server as the DUT's tunnel; each time the peer runs 500
        pairs and the DUT pings the peer. A run that wedges must leave tunneled by itself."""
        if not self.have.get("pingpong"):
            t.ok(False, "pingpong example is on the data disk")
            return
        n = self.a.f8_runs
        self.f_arm(t)
        wd_s = self.a.watchdog_us_run / 1e6
        runs, wedged, bad = [], [], []
        for i in range(n):
            rc, kv, out = self.dut.g("tunstart f8s /tmp/e/bin/pingpong em0 --role server --count 0 --timeout 600 "
                                     "--ethertype %s" % H.ETHERTYPE, 60)
            if rc != 0 or kv.get("state") != "tunneled":
                bad.append({"run": i, "start": kv.get("state"), "log": out.strip()[-200:]})
                self.dut.g("tunstop f8s KILL", 30)
                continue
            self.dut.g("bgping f8p %s 40 0.1" % H.PEER_IP, 20)
            t0 = time.monotonic()
            rc, cout = self.peer.run("timeout 60 /tmp/e/bin/pingpong em0 --role client --peer %s --ethertype %s "
                                     "--count 500 --timeout 30" % (H.DUT_MAC, H.ETHERTYPE), 90)
            wall = round(time.monotonic() - t0, 2)
            pp = H.parse_pingpong(cout)
            _, pk, _ = self.dut.g("pingres f8p 10", 30)
            self.dut.run("pkill -INT -x ping; true", 10)
            first = H.num(pk.get("ping_first_seq"))
            r = {"run": i, "pairs": pp.get("pairs"), "lost": pp.get("lost"), "secs": pp.get("secs"),
                 "client_wall_s": wall, "ping_first_s": round(first * 0.1, 1) if first is not None else None}
            if H.num(pp.get("pairs"), 0) < 500 or first is None:
                # wedged: the kernel must take the port back by itself (watchdog)
                time.sleep(wd_s + 1)
                st = self.kstate()
                r["state_after_wait"] = st.get("k.state")
                wedged.append(r)
            _, sk, _ = self.dut.g("tunstop f8s TERM", 60)
            r["exit_rc"] = sk.get("exit_rc")
            runs.append(r)
            log("F8 run %d/%d: %s" % (i + 1, n, json.dumps(r)))
        good = [r for r in runs if H.num(r["pairs"], 0) >= 500 and r["ping_first_s"] is not None]
        t.ok(len(good) == n and not bad, "%d restarts: every run 500 pairs and kernel ping answered" % n,
             good=len(good), start_failures=bad[:5], wedged=wedged[:8])
        t.ok(all(w.get("state_after_wait") != "tunneled" for w in wedged),
             "a run that wedged left tunneled by itself (watchdog)", wedged=len(wedged))
        worst_ping = max([r["ping_first_s"] for r in good] or [None]) if good else None
        worst_pairs = max([H.num(r["secs"], 0) for r in good] or [None]) if good else None
        self.limit(t, worst_ping, 2, "slowest run: kernel ping answered after the server start (0.1 s ping), s")
        self.limit(t, worst_pairs, 2, "slowest run: 500 pairs done (pingpong client's own time), s")
        t.fig(f8_runs=len(runs), f8_good=len(good), f8_wedged=len(wedged), f8_start_failures=len(bad),
              f8_ping_first_s=H.stats([r["ping_first_s"] for r in good]),
              f8_pairs_secs=H.stats([H.num(r["secs"]) for r in good]),
              f8_client_wall_s=H.stats([r["client_wall_s"] for r in good]), f8_detail=runs)

    # -- F9 ---------------------------------------------------------------------------------------
    def sc_f9(self, t):
        """F9: dev.netmap.admode=2 (emulated adapter), then the tunnel: full semantics expected
        (tunneled, owner = pid, SIGSTOP revoked by a 10 ms watchdog); admode restored."""
        if not self.kernel_tunnel:
            t.ok(False, "F9 needs the kmod-patch kernel")
            return
        _, nm0, _ = self.dut.g("nmparams", 30)
        self.f_arm(t)
        self.dut.g("dmark f9", 30)
        try:
            self.dut.run("sysctl dev.netmap.admode=2", 20)
            _, nm, _ = self.dut.g("nmparams", 30)
            t.ok(nm.get("admode") == "2", "sysctl dev.netmap.admode=2", admode=nm.get("admode"))
            r = self.watchdog_once(t, "f9wd")
            if r is not None:
                t.ok(r["state_after_stop"] == "revoked", "admode=2: SIGSTOP -> revoked by the 10 ms watchdog",
                     revoke_ms=r["revoke_ms"], state=r["state_after_stop"])
                t.ok(r["ping_while_stopped"], "kernel path works while the owner is stopped",
                     udp_recover_ms=r["udp_recover_ms"])
                t.ok(r["exit_rc"] in ("1", "3") and r["says_revoked"] and r["state_final"] == "armed",
                     "SIGCONT -> exit 'revoked', state armed", exit_rc=r["exit_rc"], final=r["state_final"])
                t.fig(f9_revoke_ms=r["revoke_ms"], f9_udp_recover_ms=r["udp_recover_ms"])
            else:
                self.f_kernel_path(t, "after the refusal under admode=2")
        finally:
            if self.dut.alive() and not self.dut.crashed:
                self.dut.run("sysctl dev.netmap.admode=%s" % nm0.get("admode", "0"), 20)
                self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run)
        _, nm1, _ = self.dut.g("nmparams", 30)
        t.ok(nm1.get("admode") == nm0.get("admode", "0"), "admode restored", admode=nm1.get("admode"))
        dm, lines = self.f_dnew(self.dut, "f9", 20)
        t.note("dmesg: %s" % json.dumps(lines[-12:])[:1500])
        t.fig(f9_generic_lines=[l for l in lines if "generic" in l.lower() or "emulated" in l.lower()][:5])


def log(msg):
    H.log(msg)
