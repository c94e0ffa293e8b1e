#!/usr/bin/env python3
"""emtun VM end-to-end harness (issue 5): boots a DUT and a peer FreeBSD VM on one wire and runs
the scenarios over their serial consoles. Python 3 standard library only.

Topology: two QEMU VMs, each with one e1000 (em0), joined by a QEMU socket netdev over
127.0.0.1 (the DUT listens, the peer connects); distinct MACs; no other NIC, so all guest
traffic stays between the two VMs. Both boot the same image with -snapshot (writes are thrown
away), plus a small read-only FAT disk carrying the binaries and tests/vm/guest/g.sh.

Every step has a timeout; a guest that hangs or panics fails the scenario and is killed, never
the harness. Reports: OUT/<scenario>.tap (TAP 13), OUT/report.json (all figures), OUT/*.console.
"""
import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import field  # issue 13's field cases F1..F9 (tests/vm/field.py): a mixin of Run

DUT_IP = "198.18.0.1"   # RFC 2544 benchmarking range, only ever on the VM-to-VM wire
PEER_IP = "198.18.0.2"
DUT_MAC = "52:54:00:e7:00:01"
PEER_MAC = "52:54:00:e7:00:02"
ETHERTYPE = "0x88b5"
UDP_ECHO_PORT = 7777
SYS = "dev.em.0.tunnel"

# service reboots the DUT: it runs last, so that no soak's memory baseline straddles a reboot
ALL_SCENARIOS = ["baseline", "tunneled", "crash", "watchdog", "ctl", "soak", "bench",
                 # issue 8 (hitless mode switch)
                 "hcrash", "hwatchdog", "noflap", "state", "mixsoak", "bridge", "htx",
                 # issue 9 (hybrid interrupts, stalled-work watchdog)
                 "wakeups"] + \
    field.FIELD_SCENARIOS + ["service"]  # issue 13: f1..f9
PEER_LL6 = "fe80::5054:ff:fee7:2%em0"   # the peer's EUI-64 link-local address (PEER_MAC)
MCAST_GROUP = "239.1.2.3"


class VMDead(Exception):
    pass


class StepTimeout(Exception):
    pass


def log(msg):
    sys.stderr.write("[vm-test %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class VM:
    """One QEMU guest driven over its serial console (a unix socket)."""

    MARK = re.compile(r"@@RC (\d+) (\d+)@@")

    def __init__(self, name, args, outdir):
        self.name = name
        self.a = args
        self.outdir = outdir
        self.sock_path = os.path.join(outdir, name + ".serial")
        self.qmp_path = os.path.join(outdir, name + ".qmp")
        self.console_log = open(os.path.join(outdir, name + ".console"), "w", errors="replace")
        self.proc = None
        self.sock = None
        self.buf = ""
        self.seq = 0
        self.crashed = None

    # -- QEMU -------------------------------------------------------------------------------
    def start(self, image, data_disk, netdev, mac, smp, mem):
        accel = "tcg,thread=multi" if self.a.accel == "tcg" else self.a.accel
        # --icount SHIFT (the DUT only, TCG): guest time = instructions x 2^SHIFT ns, so guest CPU
        # accounting counts guest instructions, not host time; needs single-threaded TCG
        icount = getattr(self.a, "icount", None) if self.name == "dut" and self.a.accel == "tcg" else None
        if icount is not None:
            accel = "tcg,thread=single"
        cmd = [
            self.a.qemu, "-name", self.name, "-nodefaults", "-no-user-config",
            "-machine", "pc", "-accel", accel, "-smp", str(smp), "-m", str(mem),
            "-display", "none", "-vga", "none", "-no-reboot",
            "-chardev", "socket,id=con0,path=%s,server=on,wait=off" % self.sock_path,
            "-serial", "chardev:con0",
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-drive", "file=%s,format=raw,if=virtio,snapshot=on" % image,
            "-drive", "file=%s,format=raw,if=virtio,readonly=on" % data_disk,
            "-netdev", netdev, "-device", "%s,netdev=n0,mac=%s" % (self.a.nic, mac),
        ]
        if self.a.accel == "kvm":
            cmd += ["-cpu", "host"]
        if icount is not None:
            cmd += ["-icount", icount if "=" in str(icount) else "shift=%s,sleep=on" % icount]
        self.qemu_cmd = cmd
        log("%s: %s" % (self.name, " ".join(shlex.quote(c) for c in cmd)))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.outdir, self.name + ".qemu.log"), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.t_start = time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise VMDead("%s: qemu exited rc=%s (see %s.qemu.log)" % (self.name, self.proc.returncode, self.name))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock_path)
                s.setblocking(False)
                self.sock = s
                return
            except OSError:
                time.sleep(0.1)
        raise VMDead("%s: serial socket never appeared" % self.name)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def qmp(self, command, **arguments):
        """One QMP command on the VM's monitor socket; returns its "return" value, raises
        VMDead on an error answer."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(self.qmp_path)
            f = s.makefile("rw")
            json.loads(f.readline())  # greeting
            for cmd in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": arguments}):
                f.write(json.dumps(cmd) + "\n")
                f.flush()
                while True:
                    r = json.loads(f.readline())
                    if "event" not in r:
                        break
                if "error" in r:
                    raise VMDead("%s: qmp %s: %s" % (self.name, cmd["execute"], r["error"]))
            return r.get("return")
        except (OSError, ValueError) as e:
            raise VMDead("%s: qmp %s: %s" % (self.name, command, e))
        finally:
            s.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    # -- serial I/O ---------------------------------------------------------------------------
    def _pump(self, wait):
        """Read what is available (waiting at most `wait` s). Raises VMDead on exit/panic."""
        import select
        if self.sock is None:
            raise VMDead("%s: no console" % self.name)
        r, _, _ = select.select([self.sock], [], [], wait)
        if r:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                data = b""
            except OSError as e:
                raise VMDead("%s: console: %s" % (self.name, e))
            if not data and not self.alive():
                raise VMDead("%s: qemu exited" % self.name)
            if data:
                text = data.decode("utf-8", "replace").replace("\r", "")
                self.console_log.write(text)
                self.console_log.flush()
                self.buf += text
                m = re.search(r"(panic: .*|Fatal trap \d+.*)", self.buf)
                if m and not self.crashed:
                    self.crashed = m.group(1)
        if self.crashed:
            raise VMDead("%s: kernel %s" % (self.name, self.crashed))
        if not self.alive():
            raise VMDead("%s: qemu exited rc=%s" % (self.name, self.proc.returncode))

    def send(self, text):
        self.console_log.write("\n<<< %s\n" % text.rstrip())
        try:
            # the tty input queue is small: type in chunks
            b = text.encode()
            for i in range(0, len(b), 64):
                self.sock.sendall(b[i:i + 64])
                time.sleep(0.01)
        except OSError as e:
            raise VMDead("%s: console send: %s" % (self.name, e))

    def expect(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                out = self.buf[:m.end()]
                self.buf = self.buf[m.end():]
                return m, out
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepTimeout("%s: waiting for %r (%ss)" % (self.name, pattern, timeout))
            self._pump(min(left, 0.5))

    def login(self, timeout):
        t0 = time.monotonic()
        self.expect(r"login: $|login: ", timeout)
        t_login = time.monotonic() - self.t_start
        self.send("root\n")
        self.expect(r"[#$] $|[#$] ", 60)
        time.sleep(0.3)
        self._pump(0.2)
        self.buf = ""
        # plain line input: no libedit (it echoes by itself), no tty echo, no prompt
        self.send("set +o emacs +o vi 2>/dev/null; stty -echo; PS1=''; export PS1\n")
        time.sleep(0.5)
        # kernel messages (link flaps on every netmap registration) must not interleave with the
        # command markers: mute the kernel console; dmesg is saved at the end instead
        self.run("sysctl kern.consmute=1 >/dev/null", 30)
        log("%s: logged in (%.1f s from qemu start, %.1f s waiting)" % (self.name, t_login, time.monotonic() - t0))
        return t_login

    def run(self, cmd, timeout):
        """Run a shell command; returns (rc, output). rc 124 = timed out (the command was
        interrupted with ^C and the console resynchronised)."""
        self.seq += 1
        n = self.seq
        self.buf = ""
        # the quotes split the marker so an echoed command line never matches it
        self.send("%s; echo \"@@R\"\"C $? %d@@\"\n" % (cmd, n))
        deadline = time.monotonic() + timeout
        while True:
            try:
                m, out = self.expect(VM.MARK.pattern, max(0.1, deadline - time.monotonic()))
            except StepTimeout:
                self.interrupt()
                return 124, ""
            if int(m.group(2)) == n:
                return int(m.group(1)), out[:m.start()]

    def interrupt(self):
        log("%s: step timed out, sending ^C" % self.name)
        for _ in range(3):
            self.send("\x03")
            time.sleep(0.5)
        self.seq += 1
        self.send("echo \"@@R\"\"C 0 %d@@\"\n" % self.seq)
        try:
            self.expect(r"@@RC 0 %d@@" % self.seq, 30)
        except StepTimeout:
            raise VMDead("%s: console unresponsive after ^C" % self.name)

    def g(self, args, timeout=60):
        """Run a g.sh subcommand; returns (rc, {key: value}, raw output)."""
        rc, out = self.run(self.a.g_env + "sh /tmp/e/g.sh " + args, timeout)
        kv = {}
        for line in out.splitlines():
            line = line.strip()
            if "=" in line and not line.startswith("log:") and " " not in line.split("=", 1)[0]:
                k, v = line.split("=", 1)
                kv[k] = v
        return rc, kv, out

    def save_dmesg(self):
        try:
            rc, out = self.run("dmesg -a", 60)
            with open(os.path.join(self.outdir, self.name + ".dmesg"), "w") as f:
                f.write(out)
        except (VMDead, StepTimeout):
            pass

    def poweroff(self, timeout=90):
        if not self.alive():
            return
        self.save_dmesg()
        try:
            self.send("poweroff\n")
            self.proc.wait(timeout)
        except (subprocess.TimeoutExpired, VMDead):
            pass
        self.kill()


class Tap:
    """TAP 13 report of one scenario, with figures."""

    def __init__(self, name):
        self.name = name
        self.lines = []
        self.n = 0
        self.failed = 0
        self.figures = {}
        self.notes = []
        self.t0 = time.monotonic()

    def ok(self, cond, desc, skip=None, todo=None, **data):
        self.n += 1
        if skip:
            self.lines.append("ok %d - %s # SKIP %s" % (self.n, desc, skip))
        elif todo and not cond:
            self.lines.append("not ok %d - %s # TODO %s" % (self.n, desc, todo))
        else:
            self.lines.append("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc))
            if not cond:
                self.failed += 1
        if data:
            self.lines.append("  ---")
            for k, v in data.items():
                self.lines.append("  %s: %s" % (k, json.dumps(v)))
            self.lines.append("  ...")
        log("%s: %s %s%s" % (self.name, "SKIP" if skip else ("ok" if cond else ("TODO" if todo else "NOT OK")), desc,
                             (" " + json.dumps(data)) if data else ""))
        return cond

    def fig(self, **kw):
        self.figures.update(kw)

    def note(self, text):
        self.notes.append(text)
        self.lines.append("# " + text)

    def text(self):
        return "TAP version 13\n1..%d\n%s\n" % (self.n, "\n".join(self.lines))


def num(v, default=None):
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


class Run(field.Field):
    def __init__(self, a):
        self.a = a
        self.dut = None
        self.peer = None
        self.kernel_tunnel = False
        self.link_down0 = 0  # link-down kernel messages at the start of the scenario (NIC=e1000e)
        self.have = {}
        self.report = {"accelerator": a.accel, "image": a.image, "scenarios": {}}

    # -- environment ----------------------------------------------------------------------------
    def free_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return p

    def boot(self):
        a = self.a
        port = self.free_port()
        self.dut = VM("dut", a, a.out)
        self.peer = VM("peer", a, a.out)
        self.dut.start(a.image, a.data, "socket,id=n0,listen=127.0.0.1:%d" % port, DUT_MAC, a.dut_smp, a.mem)
        time.sleep(1.0)
        self.peer.start(a.image, a.data, "socket,id=n0,connect=127.0.0.1:%d" % port, PEER_MAC, a.peer_smp, a.mem)
        boot = {}
        for vm in (self.dut, self.peer):
            boot[vm.name] = round(vm.login(a.boot_timeout), 1)
        self.report["boot_to_login_s"] = boot
        for vm, role in ((self.dut, "dut"), (self.peer, "peer")):
            rc, out = vm.run("mount -t msdosfs -o ro /dev/vtbd1 /mnt && rm -rf /tmp/e && cp -R /mnt/emtun /tmp/e "
                             "&& chmod +x /tmp/e/bin/* && ls /tmp/e/bin", 120)
            if rc != 0:
                raise VMDead("%s: cannot mount the data disk: %s" % (vm.name, out.strip()))
            bins = out.split()
            rc, kv, out = vm.g("init " + role, 60)
            self.report.setdefault("guest", {})[role] = kv
            if role == "dut":
                self.have = {b: (b in bins) for b in ("emtunctl", "fwd", "pingpong", "probe")}
                self.kernel_tunnel = kv.get("tunnel_sysctl") == "yes"
        self.report["binaries"] = self.have
        self.report["kernel_tunnel_sysctls"] = self.kernel_tunnel
        log("binaries: %s; kernel tunnel sysctls: %s" % (self.have, self.kernel_tunnel))
        rc, kv, _ = self.dut.g("waitping %s 60" % PEER_IP, 90)
        if rc != 0:
            raise VMDead("the wire does not work: no ping from dut to peer")
        self.peer.run("(/tmp/e/bin/probe udp-echo %d 7200 >/dev/null 2>&1 &)" % UDP_ECHO_PORT, 20)

    # -- helpers --------------------------------------------------------------------------------
    def kstate(self):
        _, kv, _ = self.dut.g("kstate", 30)
        return kv

    def kset(self, t, *assigns):
        if not self.kernel_tunnel:
            return True
        rc, kv, _ = self.dut.g("k " + " ".join(assigns), 30)
        good = all(kv.get("set.%s.rc" % x.split("=")[0]) == "0" for x in assigns)
        if not good:
            t.note("sysctl write failed: %s" % kv)
        return good

    def tcp(self, t, label, sender, receiver, dst_ip, port, size_mb, timeout):
        """One TCP transfer of /tmp/blob (already on sender); returns (ok, MB/s)."""
        receiver.g("rx %d %d" % (port, timeout + 30), 30)
        rc, kv, _ = sender.g("tx %s %d %d" % (dst_ip, port, timeout), timeout + 30)
        _, rkv, _ = receiver.g("rxres %d 60" % port, 90)
        secs = num(kv.get("tx_s"))
        mbps = round(size_mb / secs, 2) if secs else None
        good = rc == 0 and rkv.get("rx_sha256") == self.blob_sha
        t.ok(good, "%s: TCP %d MB, sha256 equal" % (label, size_mb),
             tx_rc=kv.get("tx_rc"), seconds=secs, MB_per_s=mbps,
             sent_sha256=self.blob_sha, received_sha256=rkv.get("rx_sha256"))
        return good, mbps

    def blob(self, vm):
        _, kv, _ = vm.g("mkblob %d" % self.a.size_mb, 300)
        self.blob_sha = kv.get("blob_sha256")
        return self.blob_sha

    def start_tunnel(self, t, name, mode="default"):
        rc, kv, out = self.dut.g("tun %s %s" % (name, mode), 60)
        started = rc == 0
        if self.kernel_tunnel:
            started = started and kv.get("state") == "tunneled"
            t.ok(started, "%s: tunnel up (state tunneled, owner_pid = tunnel pid)" % name,
                 state=kv.get("state"), owner_pid=kv.get("owner_pid"), pid=kv.get("pid"), cmd=kv.get("cmd"))
            if started and kv.get("owner_pid") != kv.get("pid"):
                t.ok(False, "%s: owner_pid matches" % name, owner_pid=kv.get("owner_pid"), pid=kv.get("pid"))
        else:
            t.ok(started, "%s: tunnel process running (stock kernel: no tunnel sysctls)" % name,
                 state=kv.get("state"), cmd=kv.get("cmd"))
        if not started:
            t.note("tunnel output: " + out.strip().replace("\n", " | ")[-600:])
        else:
            # registering resets the NIC (link flap): wait until the kernel path answers again
            rc, wkv, _ = self.dut.g("waitping %s 30" % PEER_IP, 60)
            if rc != 0:
                t.ok(False, "%s: ping answers after the tunnel came up" % name, waitping_s=wkv.get("waitping_s"))
        return started, kv.get("pid")

    # -- scenarios --------------------------------------------------------------------------------
    def sc_baseline(self, t):
        if self.kernel_tunnel:
            st = self.kstate()
            t.ok(st.get("k.state") == "default", "em0 tunnel state is default", state=st.get("k.state"))
        rc, kv, _ = self.dut.g("pingstat %s 10 0.2" % PEER_IP, 60)
        t.ok(rc == 0 and kv.get("ping_loss_pct") in ("0.0", "0"), "ping dut -> peer",
             loss_pct=kv.get("ping_loss_pct"), rtt_avg_ms=kv.get("rtt_avg_ms"))
        t.fig(rtt_default_ms=num(kv.get("rtt_avg_ms")))
        self.blob(self.dut)
        ok, mbps = self.tcp(t, "default mode", self.dut, self.peer, PEER_IP, 5001, self.a.size_mb, self.a.tcp_timeout)
        t.fig(tcp_default_MBps=mbps)

    def sc_tunneled(self, t):
        if not (self.have.get("emtunctl") or self.have.get("fwd")):
            t.ok(False, "a tunnel binary (emtunctl run / fwd) is on the data disk")
            return
        if self.kernel_tunnel:
            self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run)
            ok = self.kset(t, "enable=1", "stats.reset=1")
            t.ok(ok and self.kstate().get("k.state") == "armed", "arm em0 (enable=1) -> state armed")
        before = self.kstate()
        started, pid = self.start_tunnel(t, "tun", "default")
        if not started:
            return
        if not getattr(self, "blob_sha", None):
            self.blob(self.dut)
        self.dut.g("bgping tping %s 30 0.2" % PEER_IP, 20)
        ok, mbps = self.tcp(t, "tunneled", self.dut, self.peer, PEER_IP, 5002, self.a.size_mb, self.a.tcp_timeout)
        t.fig(tcp_tunnel_MBps=mbps)
        _, pkv, _ = self.dut.g("pingres tping", 150)
        t.ok(pkv.get("ping_loss_pct") in ("0.0", "0"), "ping during the tunneled transfer",
             loss_pct=pkv.get("ping_loss_pct"), rx=pkv.get("ping_rx"), rtt_avg_ms=pkv.get("rtt_avg_ms"))
        mid = self.kstate()
        if self.kernel_tunnel:
            t.ok(mid.get("k.state") == "tunneled" and mid.get("k.owner_pid") == pid,
                 "still tunneled by the same process after the traffic", state=mid.get("k.state"),
                 owner_pid=mid.get("k.owner_pid"))
        _, skv, sout = self.dut.g("tunstop tun TERM", 60)
        t.ok(skv.get("exit_rc") == "0", "tunnel exits 0 on SIGTERM", exit_rc=skv.get("exit_rc"))
        app = parse_app_stats(sout)
        after = self.kstate()
        self.counters_agree(t, before, mid, after, app)
        if self.kernel_tunnel:
            t.ok(after.get("k.state") == "armed" and after.get("k.owner_pid") == "0",
                 "after close: state armed, owner_pid 0", state=after.get("k.state"), owner_pid=after.get("k.owner_pid"))
        # the app path at the same moment as kernel traffic: pingpong is the tunnel on the DUT
        if self.have.get("pingpong"):
            self.pingpong_with_traffic(t)
        else:
            t.ok(False, "pingpong example is on the data disk")

    def counters_agree(self, t, before, mid, after, app):
        pk = self.a.size_mb * 1048576 // 1448  # data segments the sender emits at least
        t.note("app stats: %s" % json.dumps(app))
        if not self.kernel_tunnel:
            t.ok(True, "kernel counters", skip="kernel has no dev.em.0.tunnel sysctls")
            return
        hin = int(num(after.get("k.stats.host_in"), 0))
        hout = int(num(after.get("k.stats.host_out"), 0))
        t.fig(kernel_host_in=hin, kernel_host_out=hout, app_stats=app)
        t.ok(int(num(after.get("k.stats.enter"), 0)) >= 1 and int(num(after.get("k.stats.exit"), 0)) >= 1,
             "stats.enter and stats.exit counted", enter=after.get("k.stats.enter"), exit=after.get("k.stats.exit"))
        t.ok(hout >= pk, "kernel stats.host_out >= TCP data segments sent (%d)" % pk, host_out=hout)
        t.ok(hin >= pk // 4, "kernel stats.host_in counts the ACKs and echo replies", host_in=hin)
        if app:
            for kname, aname, kval in (("host_out", "from_host", hout), ("host_in", "to_host", hin)):
                aval = app.get(aname)
                if aval is None:
                    t.ok(False, "app reports %s" % aname, app=app)
                    continue
                tol = max(16, kval // 100)
                t.ok(abs(aval - kval) <= tol, "app %s agrees with kernel %s (+-%d)" % (aname, kname, tol),
                     app=aval, kernel=kval)
        else:
            t.ok(False, "tunnel printed its stats on SIGTERM")

    def pingpong_with_traffic(self, t):
        count = self.a.pp_count
        if self.kernel_tunnel:
            self.kset(t, "stats.reset=1")
        rc, kv, out = self.dut.g("tunstart pp /tmp/e/bin/pingpong em0 --role server --count 0 --timeout 3600 --ethertype %s" % ETHERTYPE, 60)
        up = rc == 0 and (kv.get("state") == "tunneled" or not self.kernel_tunnel)
        t.ok(up, "pingpong server is the DUT tunnel", state=kv.get("state"))
        if not up:
            t.note(out.strip()[-500:])
            return
        self.dut.g("waitping %s 30" % PEER_IP, 60)
        # the peer's pingpong client (the peer's own em0: stock netmap, not armed) in the background;
        # its registration resets the peer's NIC, so let the wire settle before the kernel traffic
        self.peer.g("bg ppc /tmp/e/bin/pingpong em0 --role client --peer %s --ethertype %s --count %d --timeout %d"
                    % (DUT_MAC, ETHERTYPE, count, min(300, self.a.step_timeout - 10)), 30)
        time.sleep(2)
        self.dut.g("waitping %s 30" % PEER_IP, 60)
        self.dut.g("bgping ppping %s 40 0.2" % PEER_IP, 20)
        self.peer.g("rx 5003 %d" % (self.a.tcp_timeout + 30), 30)
        self.dut.g("bgtx pptx %s 5003 %d" % (PEER_IP, self.a.tcp_timeout), 20)
        _, txkv, _ = self.dut.g("bgtxres pptx %d" % (self.a.tcp_timeout + 30), self.a.tcp_timeout + 60)
        overlap = self.peer.run("test -f /tmp/ppc.rc", 10)[0] != 0
        _, rkv, _ = self.peer.g("rxres 5003 60", 90)
        t.ok(txkv.get("tx_rc") == "0" and rkv.get("rx_sha256") == self.blob_sha,
             "TCP transfer beside pingpong, sha256 equal", tx_s=txkv.get("tx_s"), received=rkv.get("rx_sha256"),
             pingpong_still_running_at_tcp_end=overlap)
        t.fig(pingpong_covered_whole_tcp=overlap)
        _, pkv, _ = self.dut.g("pingres ppping", 150)
        t.ok(pkv.get("ping_loss_pct") in ("0.0", "0"), "ping beside pingpong", loss_pct=pkv.get("ping_loss_pct"))
        _, ckv, cout = self.peer.g("tunwait ppc %d" % min(300, self.a.step_timeout), min(300, self.a.step_timeout) + 30)
        pp = parse_pingpong(cout)
        t.ok(ckv.get("exit_rc") == "0" and pp.get("pairs_per_s"),
             "pingpong %d pairs over %s at the same time as TCP + ping" % (count, ETHERTYPE), rc=ckv.get("exit_rc"), **pp)
        st = self.kstate()
        if self.kernel_tunnel:
            t.ok(st.get("k.state") == "tunneled", "pingpong server still tunneled after the traffic",
                 state=st.get("k.state"))
        _, skv, sout = self.dut.g("tunstop pp TERM", 60)
        app = parse_app_stats(sout)
        t.note("pingpong server stats: %s" % json.dumps(app))
        if app.get("to_app") is not None:
            t.ok(app["to_app"] >= pp.get("pairs", count), "server to_app >= pairs", to_app=app["to_app"], pairs=pp.get("pairs"))
        t.fig(pingpong_beside_tcp=pp)

    def crash_once(self, t, label, with_tcp):
        started, pid = self.start_tunnel(t, label, "default")
        if not started:
            return None
        if with_tcp:
            self.peer.g("rx 5010 %d" % (self.a.tcp_timeout + 60), 30)
            self.dut.g("bgtx ctx %s 5010 %d" % (PEER_IP, self.a.tcp_timeout + 30), 20)
            time.sleep(2)
        self.dut.g("bgping cping %s 1500 0.01" % PEER_IP, 20)
        time.sleep(1)
        want = "--sysctl %s.state=armed " % SYS if self.kernel_tunnel else ""
        rc, out = self.dut.run("/tmp/e/bin/probe sig-watch %s KILL 20000 %s--udp %s:%d"
                               % (pid, want, PEER_IP, UDP_ECHO_PORT), 60)
        w = parse_json(out)
        if "error" in w:
            t.ok(False, "%s: signal the tunnel (probe sig-watch)" % label, error=w["error"])
        res = {"udp_recover_ms": w.get("udp_recover_ms"), "state_ms": w.get("state_ms"),
               "state_after": w.get("state_after"), "udp_lost": w.get("udp_lost")}
        self.dut.run("pkill -INT -x ping; true", 10)  # ping itself, not its timeout(1) wrapper
        _, pkv, _ = self.dut.g("pingres cping 20", 60)
        res["ping_gap_pkts_10ms"] = num(pkv.get("ping_max_gap_pkts"))
        rc2, kv2, _ = self.dut.g("pingstat %s 3 0.2" % PEER_IP, 30)
        res["ping_after"] = rc2 == 0
        if with_tcp:
            _, txkv, _ = self.dut.g("bgtxres ctx %d" % (self.a.tcp_timeout + 60), self.a.tcp_timeout + 90)
            _, rkv, _ = self.peer.g("rxres 5010 60", 90)
            res["tcp_survived"] = txkv.get("tx_rc") == "0" and rkv.get("rx_sha256") == self.blob_sha
            res["tcp_tx_rc"] = txkv.get("tx_rc")
        self.dut.g("tunwait %s 10" % label, 30)
        return res

    def sc_crash(self, t):
        if self.kernel_tunnel:
            self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run, "enable=1")
        if not getattr(self, "blob_sha", None):
            self.blob(self.dut)
        r = self.crash_once(t, "crash", True)
        if r is None:
            return
        t.ok(r["udp_recover_ms"] is not None, "kernel path answers again after kill -9",
             udp_recover_ms=r["udp_recover_ms"], ping_gap_pkts_10ms=r["ping_gap_pkts_10ms"])
        t.ok(r["ping_after"], "ping works after kill -9")
        if self.kernel_tunnel:
            t.ok(r["state_after"] == "armed", "state back to armed (default data path) after kill -9",
                 state_ms=r["state_ms"], state_after=r["state_after"])
        t.ok(r.get("tcp_survived"), "TCP connection survives kill -9 mid-transfer (sha256 equal)",
             tx_rc=r.get("tcp_tx_rc"))
        t.fig(crash_recover_udp_ms=r["udp_recover_ms"], crash_state_ms=r["state_ms"],
              crash_ping_outage_ms=(r["ping_gap_pkts_10ms"] or 0) * 10)

    def watchdog_once(self, t, label):
        """Start a busy-polling tunnel, set watchdog_us=10000 and SIGSTOP it in the same instant
        (probe sig-watch --set), time the revoke. The tunnel starts under WATCHDOG_US_RUN, since
        under TCG a 10 ms watchdog can fire on a running tunnel (vCPU stalls); a fire before the
        SIGSTOP all the same is counted as a false fire and the measurement retried."""
        self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run)
        for attempt in range(4):
            started, pid = self.start_tunnel(t, "%s%s" % (label, "" if attempt == 0 else "r%d" % attempt), "busy")
            if not started:
                return None
            lab = "%s%s" % (label, "" if attempt == 0 else "r%d" % attempt)
            before = self.kstate()
            want = "--sysctl %s.state=revoked " % SYS if self.kernel_tunnel else ""
            setwd = "--set %s.watchdog_us=10000 " % SYS if self.kernel_tunnel else ""
            rc, out = self.dut.run("/tmp/e/bin/probe sig-watch %s STOP 20000 %s%s--udp %s:%d"
                                   % (pid, want, setwd, PEER_IP, UDP_ECHO_PORT), 60)
            w = parse_json(out)
            if w.get("state_before") == "tunneled" or not self.kernel_tunnel:
                break
            self.false_fires = getattr(self, "false_fires", 0) + 1
            t.note("%s: the watchdog fired before the SIGSTOP (state %s): false fire #%d, retrying"
                   % (lab, w.get("state_before"), self.false_fires))
            self.dut.run("kill -CONT %s" % pid, 10)
            self.dut.g("tunwait %s 15" % lab, 30)
        label = lab
        if "error" in w:
            t.ok(False, "%s: signal the tunnel (probe sig-watch)" % label, error=w["error"])
        mid = self.kstate()
        rc2, kv2, _ = self.dut.g("pingstat %s 3 0.2" % PEER_IP, 30)
        self.dut.run("kill -CONT %s" % pid, 10)
        _, wkv, wout = self.dut.g("tunwait %s 15" % label, 30)
        after = self.kstate()
        return {"revoke_ms": w.get("state_ms"), "udp_recover_ms": w.get("udp_recover_ms"),
                "state_after_stop": w.get("state_after"), "ping_while_stopped": rc2 == 0,
                "exit_rc": wkv.get("exit_rc"), "says_revoked": "revoked" in wout.lower(),
                "revoke_watchdog_delta": int(num(after.get("k.stats.revoke_watchdog"), 0)) - int(num(before.get("k.stats.revoke_watchdog"), 0)),
                "max_gap_us": num(mid.get("k.stats.max_gap_us")), "state_final": after.get("k.state")}

    def sc_watchdog(self, t):
        if not self.kernel_tunnel:
            t.ok(False, "watchdog needs the kmod-patch kernel (no dev.em.0.tunnel sysctls)")
            return
        self.kset(t, "enable=1", "watchdog_us=10000", "stats.reset=1")
        t.ok(self.kstate().get("k.watchdog_us") == "10000", "watchdog_us=10000 accepted")
        r = self.watchdog_once(t, "wd")
        if r is None:
            return
        t.ok(r["revoke_ms"] is not None and r["state_after_stop"] == "revoked",
             "SIGSTOP -> revoked by the watchdog", revoke_ms=r["revoke_ms"], state=r["state_after_stop"])
        t.ok(r["revoke_watchdog_delta"] == 1, "stats.revoke_watchdog += 1", delta=r["revoke_watchdog_delta"])
        t.ok(r["udp_recover_ms"] is not None and r["ping_while_stopped"],
             "kernel traffic flows while the owner is still stopped", udp_recover_ms=r["udp_recover_ms"])
        t.ok(r["exit_rc"] in ("1", "3") and r["says_revoked"], "SIGCONT -> client exits with 'revoked' (fwd: 3, emtunctl run: 1)",
             exit_rc=r["exit_rc"])
        t.ok(r["state_final"] == "armed", "state armed once the fd is closed", state=r["state_final"])
        t.fig(watchdog_revoke_ms=r["revoke_ms"], watchdog_recover_udp_ms=r["udp_recover_ms"],
              false_fires_before_sigstop=getattr(self, "false_fires", 0))
        # false-fire check: a running tunnel under the 10 ms watchdog for 10 s
        started, pid = self.start_tunnel(t, "wd2", "default")
        if started:
            self.dut.g("pingstat %s 20 0.5" % PEER_IP, 60)
            st = self.kstate()
            self.dut.g("tunstop wd2 TERM", 30)
            t.ok(st.get("k.state") == "tunneled", "no false watchdog fire in 10 s of a 1 ms-interval tunnel (max_gap_us=%s)"
                 % st.get("k.stats.max_gap_us"), todo="TCG stalls vCPUs for tens of ms" if self.a.accel == "tcg" else None,
                 state=st.get("k.state"), max_gap_us=st.get("k.stats.max_gap_us"))
            t.fig(running_max_gap_us=num(st.get("k.stats.max_gap_us")))

    def sc_ctl(self, t):
        if not self.have.get("emtunctl"):
            t.ok(False, "emtunctl is on the data disk")
            return
        if not self.kernel_tunnel:
            t.ok(False, "ctl needs the kmod-patch kernel (no dev.em.0.tunnel sysctls)")
            return
        self.kset(t, "enable=0")

        def status():
            rc, out = self.dut.run("timeout 20 /tmp/e/bin/emtunctl status --json", 40)
            return rc, parse_json_any(out)

        def em0(js):
            """em0's record of a `status --json` that follows schema 1 (None if it does not)."""
            if js is None or status_schema_errors(js):
                return None
            return next((r for r in js["interfaces"] if r["name"] == "em0"), None)

        rc, js = status()
        rec = em0(js)
        t.ok(rc == 0 and js is not None and not status_schema_errors(js), "status --json follows schema 1",
             errors=status_schema_errors(js) if js is not None else ["no JSON"])
        t.ok(rc == 0 and rec is not None and rec.get("state") == "default",
             "status --json lists em0 in state default", rc=rc, em0=rec)
        for desc, cmd, check in (
            ("arm em0", "arm em0", lambda k: k.get("k.state") == "armed" and k.get("k.enable") == "1"),
            ("watchdog em0 20000", "watchdog em0 20000", lambda k: k.get("k.watchdog_us") == "20000"),
        ):
            rc, kv, out = self.dut.g("ctl " + cmd, 40)
            k = self.kstate()
            t.ok(rc == 0 and check(k), "emtunctl %s" % desc, rc=rc, state=k.get("k.state"),
                 watchdog_us=k.get("k.watchdog_us"), out=out.strip()[-300:])
        rc, js = status()
        rec = em0(js)
        t.ok(rec is not None and rec.get("state") == "armed" and str(rec.get("watchdog_us")) == "20000",
             "status --json: armed, watchdog_us 20000", em0=rec)
        started, pid = self.start_tunnel(t, "ctlt", "default")
        if started:
            rc, js = status()
            rec = em0(js) or {}
            t.ok(rec.get("state") == "tunneled" and str(rec.get("owner_pid")) == str(pid),
                 "status --json: tunneled, owner_pid", em0=rec)
            rc, kv, out = self.dut.g("ctl revoke em0", 40)
            k = self.kstate()
            t.ok(rc == 0 and k.get("k.state") in ("revoked", "armed") and k.get("k.stats.revoke_admin") == "1",
                 "emtunctl revoke em0 -> revoked, revoke_admin counted", rc=rc, state=k.get("k.state"),
                 revoke_admin=k.get("k.stats.revoke_admin"))
            _, wkv, wout = self.dut.g("tunwait ctlt 15", 30)
            t.ok(wkv.get("exit_rc") in ("1", "3") and "revoked" in wout.lower(), "the revoked tunnel exits non-zero saying revoked",
                 exit_rc=wkv.get("exit_rc"))
            rc, out = self.dut.run("timeout 20 /tmp/e/bin/emtunctl stats em0 --json", 40)
            js = parse_json_any(out)
            t.ok(rc == 0 and isinstance(js, dict) and isinstance(js.get("stats"), dict)
                 and js["stats"].get("revoke_admin") == 1, "emtunctl stats em0 --json: revoke_admin 1", rc=rc, json=js)
        rc, kv, out = self.dut.g("ctl disarm em0", 40)
        k = self.kstate()
        t.ok(rc == 0 and k.get("k.state") == "default", "emtunctl disarm em0 -> default", rc=rc, state=k.get("k.state"))
        # refusals
        self.dut.run("ifconfig em0 txcsum", 20)
        rc, kv, out = self.dut.g("ctl arm em0 --no-offload-fix", 40)
        t.ok(rc != 0 and self.kstate().get("k.state") == "default", "arm --no-offload-fix refused while txcsum is on",
             rc=rc, out=out.strip()[-300:])
        rc, kv, out = self.dut.g("ctl arm em0", 40)
        opts = self.dut.run("ifconfig em0 | grep options=", 20)[1]
        t.ok(rc == 0 and self.kstate().get("k.state") == "armed" and "TXCSUM," not in opts and "TXCSUM>" not in opts,
             "arm turns txcsum off and arms", rc=rc, options=opts.strip())
        self.dut.g("ctl disarm em0", 40)
        self.dut.run("ifconfig em0 -txcsum -txcsum6 -tso -vlanhwtag", 20)
        self.dut.g("k watchdog_us=10000", 20)

    def sc_soak(self, t):
        if not self.kernel_tunnel:
            t.ok(False, "soak needs the kmod-patch kernel (no dev.em.0.tunnel sysctls)")
            return
        self.kset(t, "enable=1", "watchdog_us=10000", "stats.reset=1")
        l0 = {}
        crash_ms, revoke_ms, fails = [], [], []
        for i in range(self.a.soak_cycles):
            if i == 1:
                # the baseline after one cycle: netmap allocates its memory pool at the first
                # registration after boot and keeps it; a leak is growth from cycle to cycle
                _, l0, _ = self.dut.g("leaks", 60)
            self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run)
            r = self.crash_once(t, "sc%d" % i, False)
            if r is None or not r["ping_after"] or r["state_after"] != "armed":
                fails.append("crash#%d: %s" % (i, r))
            else:
                crash_ms.append(r["udp_recover_ms"])
            self.kset(t, "watchdog_us=10000")
            w = self.watchdog_once(t, "sw%d" % i)
            if w is None or w["state_after_stop"] != "revoked" or w["exit_rc"] not in ("1", "3") or w["state_final"] != "armed":
                fails.append("watchdog#%d: %s" % (i, w))
            else:
                revoke_ms.append(w["revoke_ms"])
            log("soak cycle %d/%d done (%d failures)" % (i + 1, self.a.soak_cycles, len(fails)))
        _, l1, _ = self.dut.g("leaks", 60)
        l0 = l0 or l1
        k = self.kstate()
        t.ok(not fails, "%d cycles of crash + watchdog" % self.a.soak_cycles, failures=fails[:5])
        t.ok(k.get("k.stats.enter") == k.get("k.stats.exit") and k.get("k.state") == "armed"
             and k.get("k.owner_pid") == "0", "no leaked tunnel state (enter == exit, armed, owner_pid 0)",
             enter=k.get("k.stats.enter"), exit=k.get("k.stats.exit"), state=k.get("k.state"))
        t.ok(l1.get("netmap_fds") == "0" and l0.get("vm_netmap_inuse") == l1.get("vm_netmap_inuse"),
             "no leaked netmap memory or fds", before=l0, after=l1)
        t.ok(self.dut.g("pingstat %s 5 0.2" % PEER_IP, 30)[0] == 0, "ping after the soak")
        rc, out = self.dut.run("dmesg -a | grep -i -e 'lock order reversal' -e 'witness' -e 'panic' -e 'sleeping thread' "
                               "| grep -vc 'expect reduced performance'", 60)
        n = int(num(out.strip().splitlines()[-1] if out.strip() else "0", 0))
        t.ok(n == 0, "dmesg: no lock order reversal, WITNESS or panic message (matters with EMTUN-DEBUG)", lines=n)
        t.fig(soak_crash_recover_ms=stats(crash_ms), soak_revoke_ms=stats(revoke_ms),
              revoke_watchdog=k.get("k.stats.revoke_watchdog"))

    def sc_bench(self, t):
        a = self.a
        t.note("accelerator: %s (absolute rates under TCG mean little; compare the ratios)" % a.accel)
        t.fig(accelerator=a.accel, dut_vcpus=a.dut_smp)
        if self.kernel_tunnel:
            self.kset(t, "enable=1", "watchdog_us=%d" % a.watchdog_us_run)
        # 1. kernel path: UDP sockets, default mode (pingpong --udp: the same program and accounting)
        # 2. user path: pingpong over netmap (DUT client, peer server), busy and 1 ms interval
        # window 1 = strict ping-pong (RTT-bound); window 64 = pairs in flight (rate-bound)
        pp = {}
        if self.have.get("pingpong"):
            runs = (("udp", "udp", "", 1), ("busy", "netmap", "--busy", 1), ("interval", "netmap", "", 1),
                    ("udp_w64", "udp", "", 64), ("busy_w64", "netmap", "--busy", 64))
            for mode, path, flag, window in runs:
                if path == "udp":
                    srv = "/tmp/e/bin/pingpong --udp %s:7778 --role server --count 0 --timeout 3600" % PEER_IP
                    cli = "--udp %s:7778" % PEER_IP
                else:
                    srv = "/tmp/e/bin/pingpong em0 --role server --count 0 --timeout 3600 --ethertype %s %s" % (ETHERTYPE, flag)
                    cli = "em0 --peer %s --ethertype %s %s" % (PEER_MAC, ETHERTYPE, flag)
                self.peer.g("bg pps " + srv, 30)
                time.sleep(2)
                if path == "netmap":
                    self.dut.g("waitping %s 30" % PEER_IP, 60)
                rc, out = self.dut.run("timeout %d /tmp/e/bin/probe cpu -- /tmp/e/bin/pingpong %s --role client "
                                       "--count %d --window %d --timeout %d"
                                       % (a.step_timeout, cli, a.bench_pairs, window, a.step_timeout - 10),
                                       a.step_timeout + 30)
                self.peer.g("tunstop pps TERM", 30)
                r = parse_pingpong(out)
                r.update({k: v for k, v in parse_json(out).items() if k != "rc"})
                pp[mode] = r
                t.ok(rc == 0 and r.get("pairs_per_s"), "pingpong %s (%s, window %d): pairs/s" % (mode, path, window), **r)
        else:
            t.ok(False, "pingpong example is on the data disk")
        # the harness's own UDP client (cross-check of the accounting)
        rc, out = self.dut.run("/tmp/e/bin/probe udp-pingpong %s:%d %d 50" % (PEER_IP, UDP_ECHO_PORT, a.bench_pairs),
                               a.step_timeout)
        udp = parse_json(out)
        t.ok(rc == 0 and udp.get("pairs", 0) > 0, "probe udp-pingpong (kernel path) 50-octet pairs", **udp)
        t.fig(probe_udp_pairs_per_s=udp.get("pairs_per_s"), probe_udp_guest_busy_pct=udp.get("guest_busy_pct"))

        def per_cpu(r, cpu_key):
            p, c = num(r.get("pairs_per_s")), num(r.get(cpu_key))
            return p / (c / 100.0) if p and c else None
        base = pp.get("udp") or {}
        for mode, r in pp.items():
            t.fig(**{"pp_%s_pairs_per_s" % mode: num(r.get("pairs_per_s")),
                     "pp_%s_proc_cpu_pct" % mode: num(r.get("cpu_pct")),
                     "pp_%s_pairs_per_proc_cpu_s" % mode: num(r.get("pairs_per_cpu_s")),
                     "pp_%s_guest_busy_pct" % mode: num(r.get("guest_busy_pct")),
                     "pp_%s_pairs_per_guest_cpu_s" % mode: per_cpu(r, "guest_busy_pct"),
                     "pp_%s_rtt_avg_us" % mode: num(r.get("rtt_avg_us"))})
            base = pp.get("udp_w64" if mode.endswith("_w64") else "udp") or {}
            if not mode.startswith("udp") and num(base.get("pairs_per_s")) and num(r.get("pairs_per_s")):
                t.fig(**{"ratio_pairs_per_s_%s_vs_udp" % mode: round(num(r["pairs_per_s"]) / num(base["pairs_per_s"]), 3)})
                if num(base.get("pairs_per_cpu_s")) and num(r.get("pairs_per_cpu_s")):
                    t.fig(**{"ratio_pairs_per_proc_cpu_s_%s_vs_udp" % mode:
                             round(num(r["pairs_per_cpu_s"]) / num(base["pairs_per_cpu_s"]), 3)})
                e1, e0 = per_cpu(r, "guest_busy_pct"), per_cpu(base, "guest_busy_pct")
                if e1 and e0:
                    t.fig(**{"ratio_pairs_per_guest_cpu_s_%s_vs_udp" % mode: round(e1 / e0, 3)})
        # 3. TCP throughput: default vs tunnel (busy and interval)
        if not getattr(self, "blob_sha", None):
            self.blob(self.dut)
        _, d = self.tcp(t, "bench default", self.dut, self.peer, PEER_IP, 5020, a.size_mb, a.tcp_timeout)
        t.fig(bench_tcp_default_MBps=d)
        rtt = {}
        rc, kv, _ = self.dut.g("pingstat %s 50 0.05" % PEER_IP, 60)
        rtt["default"] = num(kv.get("rtt_avg_ms"))
        if self.have.get("fwd") or self.have.get("emtunctl"):
            for i, mode in enumerate(("busy", "interval")):
                started, pid = self.start_tunnel(t, "bt%d" % i, mode)
                if not started:
                    continue
                _, m = self.tcp(t, "bench tunnel %s" % mode, self.dut, self.peer, PEER_IP, 5021 + i, a.size_mb, a.tcp_timeout)
                rc, kv, _ = self.dut.g("pingstat %s 50 0.05" % PEER_IP, 60)
                rtt[mode] = num(kv.get("rtt_avg_ms"))
                self.dut.g("tunstop bt%d TERM" % i, 30)
                t.fig(**{"bench_tcp_tunnel_%s_MBps" % mode: m})
                if d and m:
                    t.fig(**{"ratio_tcp_tunnel_%s_vs_default" % mode: round(m / d, 3)})
        t.fig(rtt_avg_ms=rtt)
        for mode in ("busy", "interval"):
            if rtt.get(mode) is not None and rtt.get("default") is not None:
                t.fig(**{"rtt_added_%s_ms" % mode: round(rtt[mode] - rtt["default"], 3)})

    # -- service (issue 12: emtun(8) rc.d script, daemon(8) supervision, devd, metrics) --------
    def sc_service(self, t):
        """The rc.d service on the DUT, in one sequence: install + rc.conf + reboot (boot),
        kill -9 of the supervised tunnel (crash), SIGSTOP under a 10 ms watchdog with
        --reattach (revoke), the Prometheus metrics, the devd syslog lines, and service stop
        with the offloads restored. Leaves the DUT as `init dut` made it."""
        if not self.have.get("emtunctl"):
            t.ok(False, "emtunctl is on the data disk")
            return
        if not self.kernel_tunnel:
            t.ok(False, "service needs the kmod-patch kernel (no dev.em.0.tunnel sysctls)")
            return
        dut = self.dut
        _, cap, _ = dut.g("svccheck", 60)
        self.svc_cap = cap
        t.note("emtunctl: --reattach %s, --poll %s, stats --format prometheus %s; pingpong --reattach %s"
               % (cap.get("svc_reattach"), cap.get("svc_poll"), cap.get("svc_prom"), cap.get("pp_reattach")))
        try:
            if not self.svc_boot(t):
                return
            self.svc_crash(t)
            self.svc_revoke(t)
            self.svc_metrics(t)
            self.svc_stop(t)
            self.svc_devd(t)
        finally:
            if dut.alive() and not dut.crashed:
                dut.g("svcconf emtun_enable=NO", 30)
                dut.g("svc onestop", 150)
                dut.g("init dut", 60)

    def svc_wd(self):
        """The service's watchdog: WATCHDOG_US_RUN as an emtunctl duration."""
        us = self.a.watchdog_us_run
        return "%dms" % (us // 1000) if us % 1000 == 0 else "%dus" % us

    def svc_boot(self, t):
        dut, cap = self.dut, self.svc_cap
        rc, kv, out = dut.g("svcinstall", 120)
        if not t.ok(rc == 0 and kv.get("svcinstall") == "ok" and kv.get("rcvar") == "1",
                    "boot: binaries, rc.d script and devd rules installed", rcvar=kv.get("rcvar")):
            t.note(out.strip()[-400:])
            return False
        conf = ["ifconfig_em0=inet %s/24" % DUT_IP, "emtun_enable=YES", "emtun_ifaces=em0",
                "emtun_em0_claim=%s" % ETHERTYPE, "emtun_em0_watchdog=%s" % self.svc_wd(),
                "emtun_em0_reattach=%s" % ("YES" if cap.get("svc_reattach") == "yes" else "NO"),
                "emtun_restart_delay=1"]
        if cap.get("svc_poll") == "yes":
            conf.append("emtun_em0_poll=interval:1ms")
        _, kv, _ = dut.g("svcconf " + " ".join(shlex.quote(c) for c in conf), 60)
        t.ok(all(kv.get("sysrc.%s.rc" % c.split("=")[0]) == "0" for c in conf), "boot: rc.conf set with sysrc",
             conf=conf)
        _, st0, _ = dut.g("svcstate", 30)
        # -snapshot keeps the guest's writes until QEMU exits, and -no-reboot would make QEMU exit
        # at the reboot: let this one reboot happen, then go back to exit-on-reboot (a panic
        # that reboots must still end the run)
        dut.qmp("set-action", reboot="reset")
        # the console unmuted: the rc scripts' output at shutdown and boot, and a panic, show
        dut.run("sysctl kern.consmute=0 >/dev/null", 30)
        dut.buf = ""
        dut.send("shutdown -r now\n")
        dut.t_start = time.monotonic()
        try:
            stop_line = self.svc_console(r"emtun: em0: state \w+", 300)
            start_line = self.svc_console(r"emtun: em0: tunneled|WARNING: em0: .*", self.a.boot_timeout)
            secs = dut.login(self.a.boot_timeout)
        finally:
            dut.qmp("set-action", reboot="shutdown")
        t.fig(service_reboot_to_login_s=round(secs, 1))
        t.ok(stop_line == "emtun: em0: state default", "boot: at the shutdown, rc.shutdown stopped the service "
             "(console: em0 state default)", console=stop_line)
        t.ok(start_line == "emtun: em0: tunneled", "boot: at the boot, the rc script started the tunnel "
             "(console: em0 tunneled)", console=start_line)
        dut.run("mount -t msdosfs -o ro /dev/vtbd1 /mnt 2>/dev/null; [ -d /tmp/e ] || cp -R /mnt/emtun /tmp/e; "
                "sysctl -q net.inet.icmp.icmplim=0 >/dev/null", 120)
        _, st, _ = dut.g("svcwait tunneled 60", 90)
        _, st1, _ = dut.g("svcstate", 30)
        t.ok(st1.get("boottime") != st0.get("boottime"), "boot: the DUT rebooted",
             boottime_before=st0.get("boottime"), boottime_after=st1.get("boottime"))
        up = st.get("state") == "tunneled" and st1.get("owner_pid") == st1.get("child_pid") != ""
        t.ok(up, "boot: em0 comes up tunneled by the service's child (daemon(8) supervised)",
             state=st.get("state"), owner_pid=st1.get("owner_pid"), child_pid=st1.get("child_pid"),
             daemon_pid=st1.get("daemon_pid"), watchdog_us=st1.get("watchdog_us"))
        t.ok(st1.get("offloads_file") not in (None, ""), "boot: arm turned off offloads and the service recorded them",
             offloads=st1.get("offloads_file"), options=st1.get("options"))
        rc, kv, _ = dut.g("waitping %s 60" % PEER_IP, 90)
        rc2, pkv, _ = dut.g("pingstat %s 5 0.2" % PEER_IP, 60)
        t.ok(rc == 0 and rc2 == 0, "boot: kernel ping through the tunnel", waitping_s=kv.get("waitping_s"),
             loss_pct=pkv.get("ping_loss_pct"))
        _, skv, sout = dut.g("svc status", 60)
        t.ok(skv.get("svc_rc") == "0" and "supervised by daemon pid" in sout and "tunneled" in sout,
             "boot: service emtun status shows the supervisor and emtunctl status", out=sout.strip()[-300:])
        if not up:
            self.dut.g("svclog 20", 30)
        return up

    def svc_console(self, pattern, timeout):
        """The first console line matching pattern before the next login prompt (None if the
        prompt comes first, which is left for VM.login)."""
        try:
            # the lookahead waits for the end of the line: the console arrives in pieces, and
            # "state \w+" would otherwise match the "state de" of a half-read line
            m, _ = self.dut.expect("(?:%s)(?=[^\r\n]*\r?\n)|login: " % pattern, timeout)
        except StepTimeout:
            return None
        if m.group(0) == "login: ":
            self.dut.buf = m.group(0) + self.dut.buf
            return None
        return m.group(0).strip()

    def svc_crash(self, t):
        dut = self.dut
        _, st, _ = dut.g("svcstate", 30)
        old = st.get("child_pid")
        if not old:
            t.ok(False, "crash: the service has a tunnel pid")
            return
        dut.g("bgping svcping %s 600 0.01" % PEER_IP, 20)
        time.sleep(1)
        rc, out = dut.run("/tmp/e/bin/probe sig-watch %s KILL 20000 --sysctl %s.state=armed --udp %s:%d"
                          % (old, SYS, PEER_IP, UDP_ECHO_PORT), 60)
        w = parse_json(out)
        _, kv, _ = dut.g("svcwait tunneled 15 %s" % old, 40)
        dut.run("pkill -INT -x ping; true", 10)
        _, pkv, _ = dut.g("pingres svcping 20", 60)
        restart_s = None
        if w.get("signal_wall_ns") and num(kv.get("wait_wall_ns")):
            restart_s = round((num(kv["wait_wall_ns"]) - w["signal_wall_ns"]) / 1e9, 3)
        back = kv.get("state") == "tunneled" and kv.get("owner_pid") not in (None, "", old)
        t.ok(back and restart_s is not None and restart_s <= 3.0,
             "crash: kill -9 of the tunnel -> daemon(8) restarts it -> tunneled again within 3 s",
             restart_s=restart_s, old_pid=old, new_pid=kv.get("owner_pid"), state=kv.get("state"))
        t.ok(w.get("udp_recover_ms") is not None and (restart_s is None or w["udp_recover_ms"] < restart_s * 1000),
             "crash: kernel traffic flows in the gap (UDP echo answered before the restart)",
             udp_recover_ms=w.get("udp_recover_ms"), state_armed_ms=w.get("state_ms"),
             ping_gap_pkts_10ms=num(pkv.get("ping_max_gap_pkts")))
        t.fig(service_crash_restart_s=restart_s, service_crash_udp_recover_ms=w.get("udp_recover_ms"),
              service_crash_ping_outage_ms=(num(pkv.get("ping_max_gap_pkts")) or 0) * 10)

    def svc_revoke(self, t):
        dut, cap = self.dut, self.svc_cap
        if cap.get("svc_reattach") != "yes":
            t.ok(True, "revoke: SIGSTOP under a 10 ms watchdog -> revoked -> SIGCONT -> re-attached by itself",
                 skip="emtunctl run --reattach is not supported by this emtunctl (%s)" % cap.get("svc_reattach_err"))
            # a revoke all the same, for the devd lines: the runner exits and daemon(8) restarts it
            _, st, _ = dut.g("svcstate", 30)
            dut.g("ctl revoke em0", 30)
            dut.g("svcwait tunneled 15 %s" % st.get("child_pid"), 40)
            return
        pp = cap.get("pp_reattach") == "yes" and self.have.get("pingpong")
        if pp:
            # the application is the pingpong server, re-attaching by itself (emtun_em0_command)
            dut.g("svcconf %s" % shlex.quote("emtun_em0_command=/usr/local/bin/emtun-pingpong em0 --role server "
                                             "--count 0 --timeout 86400 --ethertype %s --reattach" % ETHERTYPE), 30)
            dut.g("svc restart", 150)
            dut.g("svcwait tunneled 30", 60)
            dut.g("waitping %s 30" % PEER_IP, 60)
            before = self.svc_pairs(t, "before the revoke")
        _, st, _ = dut.g("svcstate", 30)
        pid = st.get("child_pid")
        rc, out = dut.run("/tmp/e/bin/probe sig-watch %s STOP 20000 --sysctl %s.state=revoked --set %s.watchdog_us=10000 "
                          "--udp %s:%d" % (pid, SYS, SYS, PEER_IP, UDP_ECHO_PORT), 60)
        w = parse_json(out)
        # back to the run period before the owner runs again (a 10 ms watchdog fires falsely under TCG)
        self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run)
        dut.run("kill -CONT %s" % pid, 10)
        _, kv, _ = dut.g("svcwait tunneled 20", 40)
        t.ok(w.get("state_after") == "revoked", "revoke: SIGSTOP under a 10 ms watchdog -> revoked",
             revoke_ms=w.get("state_ms"), state_before=w.get("state_before"), state=w.get("state_after"))
        t.ok(kv.get("state") == "tunneled" and kv.get("owner_pid") == pid and kv.get("child_pid") == pid,
             "revoke: SIGCONT -> the same process re-attached by itself (no restart)",
             pid=pid, owner_pid=kv.get("owner_pid"), child_pid=kv.get("child_pid"), wait_ds=kv.get("wait_ds"))
        t.fig(service_revoke_ms=w.get("state_ms"), service_reattach_ds=num(kv.get("wait_ds")))
        if pp:
            dut.g("waitping %s 30" % PEER_IP, 60)
            after = self.svc_pairs(t, "after the re-attach")
            t.fig(service_pairs_before=before, service_pairs_after=after)
            dut.g("svcconf emtun_em0_command=", 30)
            dut.g("svc restart", 150)
            dut.g("svcwait tunneled 30", 60)
        else:
            t.ok(True, "revoke: a pingpong client on the peer sees pairs again",
                 skip="the pingpong example has no --reattach (emtunctl run answers no pairs)")

    def svc_pairs(self, t, when):
        count = 200
        rc, out = self.peer.run("timeout 120 /tmp/e/bin/pingpong em0 --role client --peer %s --ethertype %s "
                                "--count %d --timeout 60" % (DUT_MAC, ETHERTYPE, count), 150)
        pp = parse_pingpong(out)
        t.ok(rc == 0 and num(pp.get("pairs"), 0) >= count, "revoke: pingpong client on the peer sees pairs %s" % when,
             rc=rc, pairs=pp.get("pairs"), pairs_per_s=pp.get("pairs_per_s"))
        return pp.get("pairs_per_s")

    def svc_metrics(self, t):
        if self.svc_cap.get("svc_prom") != "yes":
            t.ok(True, "metrics: emtunctl stats --format prometheus parses with prometheus_client",
                 skip="emtunctl stats --format prometheus is not supported by this emtunctl (%s)"
                 % self.svc_cap.get("svc_prom_err"))
            return
        rc, kv, out = self.dut.g("prom", 30)
        text = extract_prom(out)
        with open(os.path.join(self.a.out, "service-metrics.prom"), "w") as f:
            f.write(text)
        problems = check_prometheus(text, "em0", expect_state="tunneled")
        t.ok(kv.get("prom_rc") == "0" and not problems,
             "metrics: emtunctl stats --format prometheus parses with prometheus_client, names/types/labels as emtun(8)",
             problems=problems[:8], bytes=len(text))

    def svc_stop(self, t):
        dut = self.dut
        _, st, _ = dut.g("svcstate", 30)
        _, kv, out = dut.g("svc stop", 150)
        _, st1, _ = dut.g("svcstate", 30)
        restored = [o for o in st.get("offloads_file", "").split(",") if o]
        t.ok(kv.get("svc_rc") == "0" and st1.get("state") == "default" and not st1.get("daemon_pid"),
             "stop: service emtun stop -> state default, no supervisor", state=st1.get("state"),
             out=out.strip()[-300:])
        names = {"txcsum": "TXCSUM", "txcsum6": "TXCSUM_IPV6", "tso4": "TSO4", "tso6": "TSO6",
                 "vlanhwtag": "VLAN_HWTAGGING"}
        on = set(st1.get("options", "").split(","))
        t.ok(restored and all(names[o] in on for o in restored),
             "stop: the offloads that the boot's arm turned off are on again", restored=restored,
             options=st1.get("options"))
        # a controlled cycle: options before start == options after stop
        _, kv, _ = dut.g("svc onestart", 150)
        _, mid, _ = dut.g("svcstate", 30)
        dut.g("svc onestop", 150)
        _, end, _ = dut.g("svcstate", 30)
        t.ok(mid.get("state") == "tunneled" and mid.get("options") != st1.get("options")
             and end.get("options") == st1.get("options") and end.get("state") == "default",
             "stop: onestart + onestop leave em0 in state default with the options it had before",
             before=st1.get("options"), running=mid.get("options"), after=end.get("options"), state=end.get("state"))

    def svc_devd(self, t):
        _, kv, out = self.dut.g("svclog 80", 30)
        with open(os.path.join(self.a.out, "service-messages.log"), "w") as f:
            f.write(out)
        n = {k: int(num(kv.get(k), 0)) for k in ("devd_register", "devd_revoke", "devd_revoke_watchdog", "devd_close")}
        t.ok(n["devd_register"] >= 1, "devd: syslog line for register (state=tunneled reason=register)", **n)
        t.ok(n["devd_revoke"] >= 1, "devd: syslog line for the revoke (state=revoked)", **n)
        t.ok(n["devd_close"] >= 1, "devd: syslog line for close (reason=close)", **n)
        if self.svc_cap.get("svc_reattach") == "yes":
            t.ok(n["devd_revoke_watchdog"] >= 1, "devd: the watchdog revoke is logged with reason=watchdog", **n)
    # -- issue 8: hitless mode switch ------------------------------------------------------------
    def limit(self, t, value, lim, desc, **data):
        """value <= lim passes; a shortfall under TCG is a TAP TODO that keeps the figure (never
        a pass); no figure at all fails."""
        if value is None:
            return t.ok(False, "%s (no figure)" % desc, limit=lim, **data)
        todo = None
        if value > lim and self.a.accel == "tcg":
            todo = "TCG: %.1f > %s (TAP TODO, not a pass)" % (value, lim)
        return t.ok(value <= lim, "%s: %.1f <= %s" % (desc, value, lim), todo=todo, value=value, limit=lim, **data)

    def bg_json(self, vm, name, secs):
        """Wait for a g.sh bg job and return the JSON it printed."""
        _, kv, out = vm.g("tunwait %s %d" % (name, secs), secs + 30)
        text = "\n".join(l.strip()[5:] if l.strip().startswith("log: ") else l for l in out.splitlines())
        js = parse_json(text)
        js.setdefault("exit_rc", kv.get("exit_rc"))
        return js

    def dmesg_count(self, vm, pattern):
        rc, out = vm.run("dmesg -a | grep -c -e %s" % shlex.quote(pattern), 60)
        return int(num(out.strip().splitlines()[-1] if out.strip() else "0", 0))

    LINK_DOWN = "em0: link state changed to DOWN"

    def full_reset_ok(self, t, label):
        """Every mode switch was hitless; on the 82574L (NIC=e1000e), whose receiver must not be
        stopped while in use, every switch is a full reset by design and must keep the link."""
        if not self.kernel_tunnel:
            return
        k = self.kstate()
        n = k.get("k.stats.full_reset")
        t.fig(full_reset=num(n))
        if self.a.nic != "e1000e":
            t.ok(n == "0", "%s: stats.full_reset is 0 (every switch was hitless)" % label, full_reset=n)
            return
        resets = self.dmesg_count(self.dut, "queues did not stop")
        by_design = self.dmesg_count(self.dut, "queues did not stop (rx_not_stoppable)")
        down = self.dmesg_count(self.dut, self.LINK_DOWN) - self.link_down0
        t.ok(resets == by_design and down == 0, "%s: 82574L: every full reset was rx_not_stoppable and kept the "
             "link (no '%s' in this scenario)" % (label, self.LINK_DOWN), full_reset=n, resets=resets,
             rx_not_stoppable=by_design, link_down=down)

    def sc_hcrash(self, t):
        """Issue 8 proof 1: kill -9 of the tunnel mid-TCP."""
        if self.kernel_tunnel:
            self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run, "enable=1", "stats.reset=1")
        if not getattr(self, "blob_sha", None):
            self.blob(self.dut)
        r = self.crash_once(t, "hcrash", True)
        if r is None:
            return
        self.limit(t, r["udp_recover_ms"], 50, "kill -9: kernel path answers again (UDP probe every 2 ms), ms")
        if self.kernel_tunnel:
            t.ok(r["state_after"] == "armed", "state armed after kill -9", state=r["state_after"])
            self.limit(t, r["state_ms"], 50, "kill -9: state armed, ms")
        t.ok(r.get("tcp_survived"), "TCP transfer survives kill -9 (sha256 equal)", tx_rc=r.get("tcp_tx_rc"))
        t.ok(r["ping_after"], "ping after kill -9")
        t.fig(hcrash_udp_recover_ms=r["udp_recover_ms"], hcrash_state_ms=r["state_ms"],
              hcrash_ping_gap_pkts_10ms=r["ping_gap_pkts_10ms"], hcrash_udp_lost=r.get("udp_lost"))
        self.full_reset_ok(t, "hcrash")

    def sc_hwatchdog(self, t):
        """Issue 8 proof 2: SIGSTOP of a busy tunnel, watchdog 10 ms."""
        if not self.kernel_tunnel:
            t.ok(False, "hwatchdog needs the kmod-patch kernel")
            return
        self.kset(t, "enable=1", "stats.reset=1")
        runs = []
        for i in range(self.a.hwd_runs):
            r = self.watchdog_once(t, "hwd%d" % i)
            if r is None:
                continue
            # the kernel's own account: heartbeat age when the revoke began + the NIC switch
            rc, out = self.dut.run("dmesg -a | grep 'netmap_tun: watchdog revoke' | tail -1", 30)
            m = re.search(r"last heartbeat (-?\d+) us before, NIC switched in (\d+) us", out)
            r["hb_age_us"], r["switch_us"] = (int(m.group(1)), int(m.group(2))) if m else (None, None)
            r["revoke_after_hb_ms"] = (r["hb_age_us"] + r["switch_us"]) / 1000.0 if m else None
            runs.append(r)
            t.ok(r["state_after_stop"] == "revoked" and r["exit_rc"] in ("1", "3") and r["state_final"] == "armed",
                 "run %d: SIGSTOP -> revoked by the watchdog, SIGCONT -> exit 'revoked', then armed" % i,
                 state=r["state_after_stop"], exit_rc=r["exit_rc"], final=r["state_final"])
            self.limit(t, r["revoke_after_hb_ms"], 15, "run %d: revoke done after the last heartbeat (P + 5 ms), ms" % i,
                       hb_age_us=r["hb_age_us"], switch_us=r["switch_us"])
            self.limit(t, r["udp_recover_ms"], 60, "run %d: traffic flows again after SIGSTOP, ms" % i,
                       revoke_state_ms=r["revoke_ms"])
        t.fig(hwatchdog_runs=[{k: r.get(k) for k in ("revoke_ms", "udp_recover_ms", "hb_age_us", "switch_us",
                                                       "revoke_after_hb_ms", "max_gap_us")} for r in runs],
              hwatchdog_udp_recover_ms=stats([r["udp_recover_ms"] for r in runs]),
              hwatchdog_revoke_after_hb_ms=stats([r["revoke_after_hb_ms"] for r in runs]),
              false_fires_before_sigstop=getattr(self, "false_fires", 0))
        self.full_reset_ok(t, "hwatchdog")

    def sc_htx(self, t):
        """Issue 8, the direction QEMU's e1000 does not stall: the DUT's kernel sends a datagram
        every 1 ms to the peer through the tunnel; kill -9, then SIGSTOP under a 10 ms watchdog;
        the peer's longest gap between arrivals around the switch, against the longest gap in
        the 2 s before it (TCG's own noise)."""
        if not self.kernel_tunnel:
            t.ok(False, "htx needs the kmod-patch kernel")
            return
        res = {}
        for kind in ("kill9", "stop"):
            self.kset(t, "enable=1", "watchdog_us=%d" % self.a.watchdog_us_run, "stats.reset=1")
            started, pid = self.start_tunnel(t, "htx-" + kind, "busy")
            if not started:
                continue
            # 2000 datagrams 1 ms apart take 2-8 s under TCG; the receiver listens for 30 s
            self.peer.g("bg mrx /tmp/e/bin/probe mcast-recv 239.1.2.4 5004 %s 30" % PEER_IP, 20)
            t_rx = time.monotonic()
            time.sleep(1)
            self.dut.g("bg msx /tmp/e/bin/probe mcast-send 239.1.2.4:5004 %s 2000 1" % DUT_IP, 20)
            time.sleep(1.5)
            t_switch = (time.monotonic() - t_rx) * 1000.0  # on the receiver's clock, +- the console's delays
            if kind == "kill9":
                self.dut.run("kill -9 %s" % pid, 10)
            else:
                self.dut.run("/tmp/e/bin/probe sig-watch %s STOP 5000 --sysctl %s.state=revoked --set %s.watchdog_us=10000"
                             % (pid, SYS, SYS), 30)
            self.dut.g("tunwait msx 60", 90)
            self.peer.run("pkill -INT -f 'probe mcast-recv'", 10)
            self.peer.g("tunwait mrx 30", 60)
            _, out = self.peer.run("cat /tmp/mrx.log", 30)
            if kind == "stop":
                self.dut.run("kill -CONT %s" % pid, 10)
            self.dut.g("tunwait htx-%s 15" % kind, 30)
            ts = [float(l.split()[0]) for l in out.splitlines() if re.match(r"^\d+(\.\d+)? \d+$", l.strip())]
            gaps = [(b - a, a) for a, b in zip(ts, ts[1:])]
            if len(ts) < 100:
                t.ok(False, "%s: the peer received the DUT's datagrams" % kind, received=len(ts))
                continue
            before = [g for g, at in gaps if at < t_switch - 700]
            around = [g for g, at in gaps if t_switch - 700 <= at <= t_switch + 3000]
            r = {"received": len(ts), "sent": 2000, "switch_at_ms": round(t_switch),
                 "max_gap_before_ms": round(max(before), 1) if before else None,
                 "max_gap_switch_ms": round(max(around), 1) if around else None}
            res[kind] = r
            t.ok(r["received"] >= 1900, "%s: the DUT's kernel keeps sending through the switch (%d of 2000 arrived)"
                 % (kind, r["received"]), **r)
            self.limit(t, r["max_gap_switch_ms"], 50, "%s: longest gap of the kernel's TX stream at the switch, ms" % kind,
                       max_gap_before_ms=r["max_gap_before_ms"])
        t.fig(htx=res)
        self.full_reset_ok(t, "htx")

    def sc_wakeups(self, t):
        """Issue 9: idle CPU and ping RTT per poll mode with a 10 ms watchdog; an owner asleep in
        poll(2) (or stopped) on an idle link is not revoked; a stopped owner is revoked once a
        frame waits for it, within the period."""
        if not self.kernel_tunnel:
            t.ok(False, "wakeups needs the kmod-patch kernel")
            return
        idle = self.a.wakeups_idle_s
        self.kset(t, "enable=1", "watchdog_us=10000", "stats.reset=1")
        _, pk, _ = self.peer.g("pingstat %s 20 0.2" % DUT_IP, 60)
        modes = {"default": {"rtt_avg_ms": num(pk.get("rtt_avg_ms")), "loss_pct": num(pk.get("ping_loss_pct"))}}
        for mode in ("adaptive", "interval", "busy"):
            self.kset(t, "watchdog_us=10000")
            before = self.kstate()
            started, pid = self.start_tunnel(t, "wk-" + mode, mode)
            if not started:
                continue
            time.sleep(1)
            _, c0, _ = self.dut.g("cputime %s" % pid, 30)
            time.sleep(idle)
            _, c1, _ = self.dut.g("cputime %s" % pid, 30)
            mid = self.kstate()
            # each echo reply is a lone kernel frame on the hardware TX ring of an idle tunnel
            _, pk, _ = self.peer.g("pingstat %s 20 0.2" % DUT_IP, 60)
            after = self.kstate()
            self.dut.g("tunstop wk-%s" % mode, 40)
            d = lambda kv, k: int(num(kv.get("k.stats." + k), 0)) - int(num(before.get("k.stats." + k), 0))
            cpu0, cpu1 = num(c0.get("cpu_s")), num(c1.get("cpu_s"))
            r = {"idle_cpu_pct": round(100.0 * (cpu1 - cpu0) / idle, 1) if None not in (cpu0, cpu1) else None,
                 "state_after_idle": mid.get("k.state"), "sleeps": d(mid, "sleeps"),
                 "revoke_watchdog_idle": d(mid, "revoke_watchdog"), "revoke_watchdog": d(after, "revoke_watchdog"),
                 "rtt_avg_ms": num(pk.get("rtt_avg_ms")), "rtt_max_ms": num(pk.get("rtt_max_ms")),
                 "loss_pct": num(pk.get("ping_loss_pct")), "max_wait_us": num(after.get("k.stats.max_wait_us")),
                 "max_gap_us": num(after.get("k.stats.max_gap_us"))}
            if r["revoke_watchdog"]:
                _, kl = self.dut.run("dmesg -a | grep 'netmap_tun: watchdog revoke' | tail -1", 30)
                r["kernel"] = kl.strip()
            modes[mode] = r
            t.ok(r["state_after_idle"] == "tunneled" and r["revoke_watchdog_idle"] == 0,
                 "%s: %d s on an idle link with a 10 ms watchdog: still tunneled, no revoke" % (mode, idle), **r)
            t.ok(r["loss_pct"] == 0.0, "%s: 20 pings from the peer through the idle tunnel, 0 %% loss" % mode,
                 loss_pct=r["loss_pct"], rtt_avg_ms=r["rtt_avg_ms"], revoke_watchdog=r["revoke_watchdog"])
            if mode == "adaptive":
                t.ok(r["sleeps"] > 0, "adaptive: the owner slept in poll(2) with the RX interrupts unmasked",
                     sleeps=r["sleeps"])
                self.limit(t, r["idle_cpu_pct"], 5, "adaptive: CPU of the idle tunnel, %")
            if mode == "busy":
                t.note("busy: idle CPU %s %% (one core by design)" % r["idle_cpu_pct"])
        for mode in ("adaptive", "interval", "busy"):
            if mode in modes and modes["default"]["rtt_avg_ms"] and modes[mode]["rtt_avg_ms"]:
                modes[mode]["rtt_added_ms"] = round(modes[mode]["rtt_avg_ms"] - modes["default"]["rtt_avg_ms"], 3)
        t.fig(wakeups_modes=modes)
        if "adaptive" in modes and "interval" in modes and modes["adaptive"].get("rtt_added_ms") is not None:
            t.note("RTT added over default mode: adaptive %s ms, interval:1ms %s ms, busy %s ms"
                   % (modes["adaptive"].get("rtt_added_ms"), modes["interval"].get("rtt_added_ms"),
                      modes.get("busy", {}).get("rtt_added_ms")))
        # a stopped owner on an idle link: not revoked; the first frame that waits for it: revoked
        self.kset(t, "watchdog_us=10000", "stats.reset=1")
        started, pid = self.start_tunnel(t, "wk-stop", "adaptive")
        if not started:
            return
        time.sleep(1)
        self.dut.run("kill -STOP %s" % pid, 10)
        time.sleep(2)
        idle_st = self.kstate()
        t.ok(idle_st.get("k.state") == "tunneled", "SIGSTOP on an idle link: still tunneled after 2 s (nothing waits)",
             state=idle_st.get("k.state"), max_wait_us=idle_st.get("k.stats.max_wait_us"))
        self.peer.g("pingstat %s 3 0.2" % DUT_IP, 30)
        _, ws, _ = self.dut.g("waitstate revoked 10", 30)
        st = self.kstate()
        rc, out = self.dut.run("dmesg -a | grep 'netmap_tun: watchdog revoke' | tail -1", 30)
        t.ok(st.get("k.state") == "revoked" and int(num(st.get("k.stats.revoke_watchdog"), 0)) == 1,
             "the peer's pings wait for the stopped owner: revoked by the watchdog",
             state=st.get("k.state"), revoke_watchdog=st.get("k.stats.revoke_watchdog"), kernel=out.strip())
        self.limit(t, num(st.get("k.stats.max_wait_us")), 10000,
                   "the first waiting frame waited at most the period (max_wait_us)")
        t.fig(wakeups_stop_max_wait_us=num(st.get("k.stats.max_wait_us")),
              wakeups_stop_idle_max_wait_us=num(idle_st.get("k.stats.max_wait_us")))
        self.dut.run("kill -CONT %s" % pid, 10)
        _, wkv, wout = self.dut.g("tunwait wk-stop 15", 30)
        t.ok("revoked" in wout.lower(), "SIGCONT: the owner is told it was revoked", exit_rc=wkv.get("exit_rc"))
        rc, kv, _ = self.dut.g("pingstat %s 5 0.2" % PEER_IP, 30)
        t.ok(kv.get("ping_loss_pct") == "0.0", "kernel path after the revoke: ping 0 % loss",
             loss=kv.get("ping_loss_pct"))
        self.full_reset_ok(t, "wakeups")

    def sc_noflap(self, t):
        """Issue 8 proof 3: N start/stop cycles of the tunnel under a 50 ms ping, a 10 ms UDP probe
        and a long-lived TCP stream: no link flap, short gaps, no RST."""
        n = self.a.noflap_cycles
        if self.kernel_tunnel:
            self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run, "enable=1", "stats.reset=1")
        down0 = self.dmesg_count(self.dut, "em0: link state changed to DOWN")
        self.dut.run("rm -f /tmp/nf.stop", 10)
        self.dut.g("bg devw /tmp/e/bin/probe devwatch 1800", 20)
        self.peer.g("bg tsink /tmp/e/bin/probe tcp-sink 5030 1800", 20)
        time.sleep(0.5)
        self.dut.g("bg tsrc /tmp/e/bin/probe tcp-src %s:5030 256 1800 /tmp/nf.stop" % PEER_IP, 20)
        self.dut.g("bg ugap /tmp/e/bin/probe udp-gap %s:%d 10 1800 /tmp/nf.stop" % (PEER_IP, UDP_ECHO_PORT), 20)
        self.dut.g("bgping nfping %s 36000 0.05" % PEER_IP, 20)
        time.sleep(2)
        states = []
        for i in range(n):
            started, pid = self.start_tunnel(t, "nf%d" % i, "default")
            time.sleep(1)
            _, skv, _ = self.dut.g("tunstop nf%d TERM" % i, 60)
            st = self.kstate().get("k.state")
            states.append((started, skv.get("exit_rc"), st))
            time.sleep(1)
        self.dut.run("touch /tmp/nf.stop; pkill -INT -x ping; true", 20)
        _, pkv, _ = self.dut.g("pingres nfping 30", 60)
        gap = self.bg_json(self.dut, "ugap", 30)
        src = self.bg_json(self.dut, "tsrc", 30)
        sink = self.bg_json(self.peer, "tsink", 30)
        self.dut.run("kill $(cat /tmp/devw.pid) 2>/dev/null; true", 10)
        rc, out = self.dut.run("grep -c 'subsystem=em0 type=LINK_DOWN' /tmp/devw.log", 20)
        devd_down = int(num(out.strip().splitlines()[-1] if out.strip() else "0", 0))
        rc, out = self.dut.run("grep -c 'system=IFNET' /tmp/devw.log", 20)
        devd_ifnet = int(num(out.strip().splitlines()[-1] if out.strip() else "0", 0))
        down = self.dmesg_count(self.dut, "em0: link state changed to DOWN") - down0
        t.ok(all(s[0] and s[1] == "0" and s[2] == "armed" for s in states),
             "%d cycles: tunneled, exit 0 on SIGTERM, armed after" % n, cycles=states)
        t.ok(down == 0, "0 'em0: link state changed to DOWN' kernel messages", count=down)
        t.ok(devd_down == 0, "0 devd LINK_DOWN events on em0", count=devd_down, ifnet_events=devd_ifnet)
        gap_pkts = int(num(pkv.get("ping_max_gap_pkts"), -1))
        self.limit(t, (gap_pkts + 1) * 50.0 if gap_pkts >= 0 else None, 100,
                   "longest ping gap (50 ms ping; (missing + 1) x 50), ms", ping_tx=pkv.get("ping_tx"),
                   ping_rx=pkv.get("ping_rx"))
        self.limit(t, num(gap.get("max_gap_ms")), 100, "longest gap between UDP echo answers (10 ms probe), ms",
                   gaps=gap.get("gaps_over_3_intervals"))
        t.ok(src.get("error") == "" and sink.get("error") == "" and sink.get("eof") is True
             and src.get("bytes") == sink.get("bytes") and (src.get("bytes") or 0) > 0,
             "long-lived TCP stream: no RST, no error, every byte arrived", src=src, sink=sink)
        t.fig(noflap_cycles=n, noflap_link_down_msgs=down, noflap_devd_link_down=devd_down,
              noflap_ping_max_gap_pkts_50ms=gap_pkts, noflap_udp_max_gap_ms=num(gap.get("max_gap_ms")),
              noflap_udp_gaps=gap.get("gaps_over_3_intervals"), noflap_tcp_bytes=sink.get("bytes"))
        self.full_reset_ok(t, "noflap")

    def sc_state(self, t):
        """Issue 8 proof 4: promiscuous mode, IPv6 link-local neighbour discovery and a joined
        multicast group survive every transition (SIGTERM, kill -9, admin revoke)."""
        if self.kernel_tunnel:
            self.kset(t, "watchdog_us=%d" % self.a.watchdog_us_run, "enable=1", "stats.reset=1")
        for vm in (self.dut, self.peer):
            vm.run("sysctl -q net.inet6.ip6.dad_count=0; ifconfig em0 inet6 -ifdisabled auto_linklocal up; true", 20)
        time.sleep(3)
        self.dut.run("ifconfig em0 promisc", 10)
        self.dut.g("bg mrecv /tmp/e/bin/probe mcast-recv %s 5040 %s 1800" % (MCAST_GROUP, DUT_IP), 20)
        self.peer.g("bg msend /tmp/e/bin/probe mcast-send %s:5040 %s 90000 20" % (MCAST_GROUP, PEER_IP), 20)
        time.sleep(2)
        results = []

        def check(label):
            _, out = self.dut.run("ifconfig em0 | head -1", 10)
            promisc = "PROMISC" in out
            rc6, _ = self.dut.run("ping6 -c 2 -i 0.2 %s >/dev/null 2>&1" % PEER_LL6, 30)
            c0 = self.dut.run("wc -l < /tmp/mrecv.log", 10)[1].strip()
            time.sleep(1.5)
            c1 = self.dut.run("wc -l < /tmp/mrecv.log", 10)[1].strip()
            mc = num(c1.splitlines()[-1] if c1 else None, 0) > num(c0.splitlines()[-1] if c0 else None, 0)
            r = {"at": label, "promisc": promisc, "ping6_ll": rc6 == 0, "mcast_rx": mc}
            results.append(r)
            t.ok(promisc and rc6 == 0 and mc, "%s: PROMISC set, link-local ping6 answers, multicast %s received"
                 % (label, MCAST_GROUP), **r)

        check("before")
        for i, how in enumerate(("term", "kill9", "admin")):
            started, pid = self.start_tunnel(t, "st%d" % i, "default")
            if not started:
                continue
            check("tunneled #%d" % i)
            if how == "term":
                self.dut.g("tunstop st%d TERM" % i, 60)
            elif how == "kill9":
                self.dut.g("tunstop st%d KILL" % i, 60)
            else:
                self.kset(t, "revoke=1")
                self.dut.g("tunwait st%d 20" % i, 60)
            if self.kernel_tunnel:
                self.dut.g("waitstate armed 10", 30)
            check("after %s" % how)
        self.dut.run("ifconfig em0 -promisc; kill $(cat /tmp/mrecv.pid) 2>/dev/null; true", 10)
        self.peer.run("kill $(cat /tmp/msend.pid) 2>/dev/null; true", 10)
        t.fig(state_checks=results)
        self.full_reset_ok(t, "state")

    SOAK_KINDS = "kill9 stop admin term"

    def sc_mixsoak(self, t):
        """Issue 8 proof 5: N cycles mixing kill -9, SIGSTOP + watchdog, admin revoke and SIGTERM,
        run inside the guest (g.sh cycles); then leak, counter and WITNESS checks."""
        if not self.kernel_tunnel:
            t.ok(False, "mixsoak needs the kmod-patch kernel")
            return
        n = self.a.mixsoak_cycles
        self.kset(t, "enable=1", "stats.reset=1", "watchdog_us=%d" % self.a.watchdog_us_run)
        kern = self.dut.run("uname -i", 10)[1].strip().splitlines()[-1:]
        lor0 = self.dmesg_count(self.dut, "lock order reversal")
        # one cycle first: netmap keeps the pool it allocates at the first registration since boot
        self.dut.g('cycles soak "%s" 1 %d 0.2' % (self.SOAK_KINDS, self.a.watchdog_us_run), 150)
        self.kset(t, "stats.reset=1")
        _, l0, _ = self.dut.g("leaks", 60)
        t0 = time.monotonic()
        rc, kv, out = self.dut.g('cycles soak "%s" %d %d 0.2' % (self.SOAK_KINDS, n, self.a.watchdog_us_run), n * 30 + 120)
        secs = round(time.monotonic() - t0, 1)
        cycles = {k: v for k, v in kv.items() if k.startswith("soak.")}
        bad = [("%s=%s" % (k, v)) for k, v in cycles.items() if not (",armed=1,ping=1," in v and "rc=running" not in v)]
        kinds = {}
        for v in cycles.values():
            kinds[v.split(",")[0]] = kinds.get(v.split(",")[0], 0) + 1
        time.sleep(2)
        _, l1, _ = self.dut.g("leaks", 60)
        k = self.kstate()
        t.ok(len(cycles) == n and not bad, "%d cycles (kill -9, SIGSTOP + watchdog, admin revoke, SIGTERM), each "
             "ends armed with ping working" % n, cycles=len(cycles), kinds=kinds, failures=bad[:8], seconds=secs)
        t.ok(k.get("k.stats.enter") == k.get("k.stats.exit") and k.get("k.state") == "armed"
             and k.get("k.owner_pid") == "0", "enter == exit, armed, owner_pid 0",
             enter=k.get("k.stats.enter"), exit=k.get("k.stats.exit"), state=k.get("k.state"))
        self.full_reset_ok(t, "mixsoak")
        mb0, mb1 = num(l0.get("mbuf_current"), 0), num(l1.get("mbuf_current"), 0)
        t.ok(l1.get("netmap_fds") == "0" and l0.get("vm_netmap_inuse") == l1.get("vm_netmap_inuse")
             and l0.get("vm_netmap_memuse") == l1.get("vm_netmap_memuse") and mb1 <= mb0 * 1.1 + 64,
             "netmap fds 0, netmap malloc and mbufs back to baseline", before=l0, after=l1)
        lor = self.dmesg_count(self.dut, "lock order reversal") - lor0
        rc, out = self.dut.run("dmesg -a | grep -i -e 'lock order reversal' -e 'witness_' -e 'panic' -e 'sleeping thread' "
                               "-e 'sleeping with' | grep -vc 'expect reduced performance'", 60)
        nbad = int(num(out.strip().splitlines()[-1] if out.strip() else "0", 0))
        t.ok(lor == 0 and nbad == 0, "dmesg: no lock order reversal, WITNESS or panic message", lor=lor, lines=nbad,
             kernel_ident=kern)
        t.fig(mixsoak_cycles=len(cycles), mixsoak_kinds=kinds, mixsoak_failures=len(bad), mixsoak_seconds=secs,
              mixsoak_kernel=kern, enter=num(k.get("k.stats.enter")), exit=num(k.get("k.stats.exit")),
              revoke_watchdog=num(k.get("k.stats.revoke_watchdog")), revoke_admin=num(k.get("k.stats.revoke_admin")),
              leaks_before=l0, leaks_after=l1)

    def sc_bridge(self, t):
        """Issue 8 proof 6: stock netmap bridge -i netmap:em0 -i netmap:em0^ (em0 not armed, so
        stock netmap) on the same image: outage after kill -9 and after SIGSTOP (capped)."""
        rc, _ = self.dut.run("test -x /usr/local/bin/bridge", 10)
        if rc != 0:
            t.ok(False, "/usr/local/bin/bridge is in the image")
            return
        if self.kernel_tunnel:
            self.kset(t, "enable=0")
        cap = 10000
        down0 = self.dmesg_count(self.dut, "em0: link state changed to DOWN")
        res = {}
        for sig in ("KILL", "STOP"):
            self.dut.g("bg br /usr/local/bin/bridge -i netmap:em0 -i netmap:em0^", 20)
            time.sleep(3)
            rc, wkv, _ = self.dut.g("waitping %s 60" % PEER_IP, 90)
            alive = self.dut.run("test ! -f /tmp/br.rc", 10)[0] == 0
            t.ok(rc == 0 and alive, "bridge running and forwarding (%s run)" % sig, waitping_s=wkv.get("waitping_s"))
            pid = self.dut.run("cat /tmp/br.pid", 10)[1].strip().splitlines()[-1:]
            rc, out = self.dut.run("/tmp/e/bin/probe sig-watch %s %s %d --udp %s:%d"
                                   % (pid[0] if pid else "0", sig, cap, PEER_IP, UDP_ECHO_PORT), 60)
            w = parse_json(out)
            v = w.get("udp_recover_ms")
            res[sig] = {"outage_ms": v if v is not None else cap, "capped": v is None, "udp_lost": w.get("udp_lost")}
            if sig == "STOP":
                self.dut.run("kill -9 %s; true" % (pid[0] if pid else "0"), 10)
            self.dut.g("tunwait br 20", 40)
            self.dut.g("waitping %s 60" % PEER_IP, 90)
        flaps = self.dmesg_count(self.dut, "em0: link state changed to DOWN") - down0
        t.ok(True, "stock bridge: outage after kill -9 %.1f ms, after SIGSTOP %s ms%s; %d link flaps"
             % (res["KILL"]["outage_ms"], res["STOP"]["outage_ms"], " (capped: never came back)"
                if res["STOP"]["capped"] else "", flaps), **res)
        ours = self.report["scenarios"].get("hcrash", {}).get("figures", {})
        wd = self.report["scenarios"].get("hwatchdog", {}).get("figures", {}).get("hwatchdog_udp_recover_ms") or {}
        t.fig(bridge_kill9_outage_ms=res["KILL"]["outage_ms"], bridge_sigstop_outage_ms=res["STOP"]["outage_ms"],
              bridge_sigstop_capped=res["STOP"]["capped"], bridge_link_flaps=flaps,
              emtun_kill9_outage_ms=ours.get("hcrash_udp_recover_ms"), emtun_sigstop_outage_ms=wd.get("median"))
        if self.kernel_tunnel:
            self.kset(t, "enable=1")

    # -- driver ---------------------------------------------------------------------------------
    def run(self):
        ok_all = True
        try:
            self.boot()
        except (VMDead, StepTimeout) as e:
            log("boot failed: %s" % e)
            t = Tap("boot")
            t.ok(False, "boot both VMs, log in, wire up", error=str(e))
            self.finish_scenario(t)
            self.shutdown()
            return False
        for name in self.a.scenarios:
            t = Tap(name)
            log("=== scenario %s ===" % name)
            try:
                if self.a.nic == "e1000e" and self.kernel_tunnel:
                    self.link_down0 = self.dmesg_count(self.dut, self.LINK_DOWN)
                getattr(self, "sc_" + name)(t)
            except (VMDead, StepTimeout) as e:
                t.ok(False, "scenario finished without a hung or dead guest", error=str(e))
                self.finish_scenario(t)
                ok_all = False
                log("guest lost (%s); remaining scenarios are not run" % e)
                for rest in self.a.scenarios[self.a.scenarios.index(name) + 1:]:
                    r = Tap(rest)
                    r.ok(False, "not run: guest lost in %s" % name)
                    self.finish_scenario(r)
                break
            except Exception as e:  # a bug in the harness must still produce a report
                t.ok(False, "harness error: %r" % e)
            ok_all &= self.finish_scenario(t)
        self.shutdown()
        return ok_all

    def finish_scenario(self, t):
        with open(os.path.join(self.a.out, t.name + ".tap"), "w") as f:
            f.write(t.text())
        self.report["scenarios"][t.name] = {"passed": t.failed == 0, "tests": t.n, "failed": t.failed,
                                            "seconds": round(time.monotonic() - t.t0, 1),
                                            "figures": t.figures, "notes": t.notes}
        with open(os.path.join(self.a.out, "report.json"), "w") as f:
            json.dump(self.report, f, indent=2, sort_keys=True)
        return t.failed == 0

    def shutdown(self):
        for vm in (self.dut, self.peer):
            if vm:
                vm.poweroff(60)


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    xs.sort()
    return {"n": len(xs), "min": round(xs[0], 3), "median": round(xs[len(xs) // 2], 3), "max": round(xs[-1], 3)}


def parse_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}


# `emtunctl status --json`, schema 1 (emtunctl(8); golden sample ctl/tests/data/status-schema1.json)
STATUS_RECORD_1 = {"name": str, "driver": str, "unit": int, "state": str, "enabled": bool,
                   "owner": (dict, type(None)), "owner_pid": int, "watchdog_us": int, "link": str,
                   "offloads": (dict, type(None)), "stats": dict}
STATUS_STATES = ("default", "armed", "tunneled", "revoked")
STATUS_STATS_1 = ("enter", "exit", "revoke_watchdog", "revoke_admin", "host_in", "host_out", "host_drop",
                  "max_gap_us")


def status_schema_errors(js):
    """What in `js` departs from schema 1: an empty list when it conforms."""
    errs = []
    if not isinstance(js, dict) or js.get("schema") != 1 or not isinstance(js.get("interfaces"), list):
        return ["top level must be {\"schema\": 1, \"interfaces\": [...]}"]
    for i, rec in enumerate(js["interfaces"]):
        if not isinstance(rec, dict):
            errs.append("interfaces[%d] is not an object" % i)
            continue
        for key, ty in STATUS_RECORD_1.items():
            if key not in rec:
                errs.append("interfaces[%d] lacks %s" % (i, key))
            elif not isinstance(rec[key], ty) or (ty is int and isinstance(rec[key], bool)):
                errs.append("interfaces[%d].%s has type %s" % (i, key, type(rec[key]).__name__))
        if rec.get("state") not in STATUS_STATES:
            errs.append("interfaces[%d].state %r is not a known state" % (i, rec.get("state")))
        stats = rec.get("stats") if isinstance(rec.get("stats"), dict) else {}
        for c in STATUS_STATS_1:
            if not isinstance(stats.get(c), int):
                errs.append("interfaces[%d].stats.%s missing or not an integer" % (i, c))
    return errs


def parse_json_any(text):
    """The first JSON document in text (object or array, possibly multi-line)."""
    dec = json.JSONDecoder()
    for i, c in enumerate(text):
        if c in "{[":
            try:
                return dec.raw_decode(text[i:])[0]
            except ValueError:
                continue
    return None


# Prometheus metrics of `emtunctl stats IFACE --format prometheus`, as specified in emtun(8):
# name -> (type, label names). The Rust side must print exactly these.
PROM_METRICS = {
    "emtun_state": ("gauge", {"iface", "state"}),
    "emtun_watchdog_us": ("gauge", {"iface"}),
    "emtun_max_gap_us": ("gauge", {"iface"}),
    "emtun_max_wait_us": ("gauge", {"iface"}),
    "emtun_enter_total": ("counter", {"iface"}),
    "emtun_exit_total": ("counter", {"iface"}),
    "emtun_revoke_watchdog_total": ("counter", {"iface"}),
    "emtun_revoke_admin_total": ("counter", {"iface"}),
    "emtun_host_in_total": ("counter", {"iface"}),
    "emtun_host_out_total": ("counter", {"iface"}),
    "emtun_host_drop_total": ("counter", {"iface"}),
    "emtun_full_reset_total": ("counter", {"iface"}),
    "emtun_sleeps_total": ("counter", {"iface"}),
}
PROM_STATES = ("default", "armed", "tunneled", "revoked")


def extract_prom(text):
    """The exposition text g.sh prints between its markers."""
    m = re.search(r"@@PROM-BEGIN@@\n(.*?)@@PROM-END@@", text, re.S)
    return m.group(1) if m else ""


def check_prometheus(text, iface, expect_state=None):
    """Problems of an exposition text against emtun(8)'s spec ([] = good), parsed with
    prometheus_client's text parser (PyPI), as Prometheus' textfile collector would."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return ["prometheus_client is not installed (pip install prometheus_client)"]
    problems = []
    try:
        fams = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others on bad input
        return ["does not parse: %r" % e]
    seen = {}
    for f in fams:
        for smp in f.samples:
            seen.setdefault(smp.name, []).append((f.type, smp))
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) != 4 or parts[2] not in PROM_METRICS:
                problems.append("unexpected TYPE line: %s" % line)
            elif parts[3] != PROM_METRICS[parts[2]][0]:
                problems.append("%s: TYPE %s, want %s" % (parts[2], parts[3], PROM_METRICS[parts[2]][0]))
    helped = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP ") and len(l.split()) > 2}
    for name, (typ, labels) in PROM_METRICS.items():
        if name not in helped:
            problems.append("%s: no HELP line" % name)
        if name not in seen:
            problems.append("%s: missing" % name)
            continue
        for ftype, smp in seen[name]:
            if ftype != typ:
                problems.append("%s: parsed as %s, want %s" % (name, ftype, typ))
            if set(smp.labels) != labels:
                problems.append("%s: labels %s, want %s" % (name, sorted(smp.labels), sorted(labels)))
            if smp.labels.get("iface") != iface:
                problems.append("%s: iface=%r, want %r" % (name, smp.labels.get("iface"), iface))
            if smp.value < 0 or smp.value != int(smp.value):
                problems.append("%s: value %r is not a non-negative integer" % (name, smp.value))
            if smp.timestamp is not None:
                problems.append("%s: has a timestamp" % name)
    for name in seen:
        if name not in PROM_METRICS:
            problems.append("%s: not in the spec" % name)
    states = {smp.labels.get("state"): smp.value for _, smp in seen.get("emtun_state", [])}
    if "emtun_state" in seen:
        if set(states) != set(PROM_STATES):
            problems.append("emtun_state: states %s, want %s" % (sorted(states, key=str), list(PROM_STATES)))
        elif sum(states.values()) != 1:
            problems.append("emtun_state: %s samples are 1, want exactly one" % sum(states.values()))
        elif expect_state and states.get(expect_state) != 1:
            problems.append("emtun_state: current state is not %s: %s" % (expect_state, states))
    return problems


def parse_app_stats(text):
    """Counters a tunnel prints on exit: 'to_app=1 from_host: 2 ...' or JSON; names as emtunctl and fwd print them."""
    names = ("to_app", "from_app", "to_host", "from_host", "dropped", "syncs", "runt", "oversize", "bad_buf_idx")
    js = parse_json_any(text[text.find("{"):]) if "{" in text else None
    out = {}
    if isinstance(js, dict):
        flat = dict(js)
        for v in js.values():
            if isinstance(v, dict):
                flat.update(v)
        for n in names:
            if isinstance(flat.get(n), (int, float)):
                out[n] = int(flat[n])
    for n in names:
        if n not in out:
            m = re.search(r"\b%s\b\s*[:=]?\s*(\d+)" % n, text)
            if m:
                out[n] = int(m.group(1))
    return out


def parse_pingpong(text):
    """pingpong's result line: 'pingpong mode=.. role=.. pairs=N pairs_per_s=X cpu_s=.. cpu_pct=..
    pairs_per_cpu_s=.. rtt_min_us=.. rtt_avg_us=.. rtt_p99_us=..'."""
    r = {}
    for line in text.splitlines():
        if "pairs_per_s=" in line or line.strip().startswith("pingpong "):
            for k, v in re.findall(r"(\w+)=(\S+)", line):
                f = num(v)
                r[k] = f if f is not None else v
    if "pairs_per_s" not in r:
        m = re.search(r"([\d.]+)\s*pairs/s", text)
        if m:
            r["pairs_per_s"] = float(m.group(1))
    r["raw"] = " | ".join(l.strip() for l in text.strip().splitlines()[-3:])[:400]
    return r


field.H = sys.modules[__name__]


def add_vm_args(p, dut_smp):
    """The options of the two VMs, shared with bench.py."""
    p.add_argument("--image", required=True)
    p.add_argument("--data", required=True, help="FAT disk image with emtun/{bin,g.sh}")
    p.add_argument("--out", required=True)
    p.add_argument("--accel", default="tcg", choices=["tcg", "kvm"])
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--nic", default="e1000", help="e1000 (82540EM) or e1000e (82574)")
    p.add_argument("--mem", type=int, default=1024)
    p.add_argument("--dut-smp", type=int, default=dut_smp)
    p.add_argument("--peer-smp", type=int, default=1)
    p.add_argument("--icount", default=None, metavar="SHIFT",
                   help="TCG only: run the DUT with -icount shift=SHIFT,sleep=on (or -icount SPEC when it "
                        "holds a '=') and -accel tcg,thread=single (deterministic guest time; default off)")


def settle(a):
    """What both entry points (this and bench.py) derive from their options: the tunnel binary
    for g.sh, the running watchdog period, the report directory; SIGTERM and SIGHUP end the run
    through run_and_kill, so the VMs never outlive it."""
    a.g_env = "" if a.tunnel == "auto" else "TUN=%s " % a.tunnel
    if not a.watchdog_us_run:
        a.watchdog_us_run = 10000 if a.accel == "kvm" else 2000000
    os.makedirs(a.out, exist_ok=True)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)


def run_and_kill(r):
    """r.run(), then both VMs are killed, whatever happened."""
    try:
        return r.run()
    finally:
        for vm in (r.dut, r.peer):
            if vm:
                vm.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_vm_args(p, dut_smp=2)
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS))
    p.add_argument("--size-mb", type=int, default=100)
    p.add_argument("--tcp-timeout", type=int, default=600)
    p.add_argument("--step-timeout", type=int, default=300)
    p.add_argument("--boot-timeout", type=int, default=600)
    p.add_argument("--soak-cycles", type=int, default=20)
    p.add_argument("--mixsoak-cycles", type=int, default=100)
    p.add_argument("--noflap-cycles", type=int, default=10)
    p.add_argument("--wakeups-idle-s", type=int, default=10)
    p.add_argument("--hwd-runs", type=int, default=3)
    p.add_argument("--pp-count", type=int, default=20000)
    p.add_argument("--f1-pkts", type=int, default=0,
                   help="F1: pkt-gen -n (default 2000000 with kvm, 300000 with tcg)")
    p.add_argument("--f7-cycles", type=int, default=30, help="F7: stop-under-load cycles")
    p.add_argument("--f8-runs", type=int, default=30, help="F8: pingpong server restarts")
    p.add_argument("--bench-pairs", type=int, default=20000)
    p.add_argument("--tunnel", default="auto", choices=["auto", "emtunctl", "fwd"],
                   help="tunnel binary: emtunctl run (auto when present) or the fwd example")
    p.add_argument("--watchdog-us-run", type=int, default=0,
                   help="watchdog_us while tunnels run in the scenarios other than watchdog/soak "
                        "(default: 10000 with kvm; 2000000 with tcg, where a 1 ms poll loop sees gaps of "
                        "tens of ms and a 10 ms watchdog fires falsely)")
    a = p.parse_args()
    a.scenarios = [s.lower() for s in a.scenarios.split(",") if s]  # F1 = f1
    if not a.f1_pkts:
        a.f1_pkts = 2000000 if a.accel == "kvm" else 300000
    bad = [s for s in a.scenarios if s not in ALL_SCENARIOS]
    if bad:
        p.error("unknown scenarios %s (have %s)" % (bad, ALL_SCENARIOS))
    a.scenarios.sort(key=ALL_SCENARIOS.index)  # the documented order: service (a reboot) last
    settle(a)
    r = Run(a)
    ok = run_and_kill(r)
    rep = r.report
    npass = sum(1 for s in rep["scenarios"].values() if s["passed"])
    nfail = len(rep["scenarios"]) - npass
    print(json.dumps(rep, indent=2, sort_keys=True))
    print("vm-test: %d passed, %d failed" % (npass, nfail))
    print("reports: %s/*.tap, %s/report.json" % (a.out, a.out))
    return 0 if ok and nfail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
