"""Host-side checks of the VM benchmark (tests/vm/bench.py) that need no FreeBSD image:
    python3 -m unittest discover -s tests/vm -p 'test_*.py'
A dry run drives every scenario against scripted VMs (no QEMU)."""
import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import bench  # noqa: E402
import harness  # noqa: E402

# DUT CPU per pair (us) the scripted servers report, by how they answer
CPU = {"udp": 400.0, "busy": 900.0, "interval": 30.0, "adaptive": 35.0}


class FakeBenchVM:
    """A scripted DUT or peer: just enough state (the running server, its CPU windows) for the
    benchmark's steps to find figures."""

    def __init__(self, name):
        self.name, self.calls, self.server, self.windows, self.tunnel = name, [], None, 0, False
        self.peer_view = self  # the DUT's tunnel as the peer's pings see it

    def run(self, cmd, timeout):
        self.calls.append(cmd)
        if "--role client" in cmd:
            m = re.search(r"--rate (\d+)", cmd)
            pps = int(m.group(1)) if m else (1200 if "--udp-over-netmap" in cmd else 3000)
            return 0, ("pingpong mode=netmap role=client pairs=%d lost=0 secs=20.0 pairs_per_s=%d cpu_s=1 "
                       "cpu_pct=5 pairs_per_cpu_s=1 rtt_min_us=1 rtt_avg_us=900.0 rtt_p99_us=2\n" % (pps * 20, pps))
        if "sig-watch" in cmd:
            stop_bridge = "STOP" in cmd and "--sysctl" not in cmd
            return 0, ('{"state_after":"armed","state_ms":12.0}\n' if stop_bridge else
                       '{"state_after":"armed","state_ms":12.0,"udp_recover_ms":%s}\n'
                       % ("3300.0" if "--sysctl" not in cmd else "1100.0"))
        if cmd.startswith("cat /tmp/br.pid"):
            return 0, "4242\n"
        return 0, ""

    def g(self, args, timeout=60):
        self.calls.append(args)
        a = args.split()
        sub, kv, out, rc = a[0], {}, "", 0
        if sub in ("tunstart", "bg") and a[1] == "ppsrv":
            self.server = "udp" if "--udp" in args else re.search(r"--poll (\w+)", args).group(1)
            self.windows = 0
            kv = {"state": "tunneled", "pid": "200", "owner_pid": "200"}
        elif sub == "tun":
            self.peer_view.tunnel = self.tunnel = True
            kv = {"state": "tunneled", "pid": "300", "owner_pid": "300"}
        elif sub == "tunstop" and a[1] == "ppsrv":
            runs = 1 if self.windows == 0 else self.windows
            out = "".join("log: pingpong window n=%d pairs=8000 secs=8.0 guest_busy_pct=20 "
                          "guest_cpu_us_per_pair=%.1f guest_cpu_exact_us_per_pair=%.1f\n"
                          % (i + 1, CPU[self.server] * (1 + 0.01 * i), CPU[self.server])
                          for i in range(max(runs, 3)))
            out += "log: pingpong mode=udp role=server pairs=24000\n"
        elif sub == "tunstop" and a[1] != "ppsrv":
            self.peer_view.tunnel = self.tunnel = False
        elif sub == "k":
            kv = {"set.%s.rc" % x.split("=")[0]: "0" for x in a[1:]}
        elif sub == "mkblob":
            kv = {"blob_sha256": "abc"}
        elif sub == "tx":
            kv = {"tx_rc": "0", "tx_s": "4.0"}
        elif sub == "rxres":
            kv = {"rx_sha256": "abc"}
        elif sub == "pingstat":
            kv = {"rtt_avg_ms": "1.50" if not self.tunnel else "1.80", "ping_loss_pct": "0.0"}
        elif sub == "tunwait" and a[1] == "gap":
            out = 'log: {"max_gap_ms":%s}\n' % ("1200.0" if "an-" in " ".join(self.calls[-8:]) else "3500.0")
        elif sub == "waitping":
            kv = {"waitping_s": "0"}
        return rc, kv, out


class Helpers(unittest.TestCase):
    def test_windows(self):
        text = ("log: pingpong window n=1 pairs=8000 secs=8.012 pairs_per_s=998 ncpu=1 ticks=1017 busy_ticks=210 "
                "guest_busy_pct=20.65 guest_cpu_s=1.6545 guest_cpu_us_per_pair=206.81\nlog: other\n"
                "pingpong window n=2 pairs=8000 guest_cpu_us_per_pair=210.00\n")
        w = bench.parse_windows(text)
        self.assertEqual(len(w), 2)
        self.assertEqual(w[0]["guest_cpu_us_per_pair"], 206.81)
        self.assertEqual(w[1]["n"], 2.0)

    def test_spread_median_rate(self):
        self.assertEqual(bench.spread_pct([100.0, 104.0, 102.0]), 3.92)
        self.assertIsNone(bench.spread_pct([100.0]))
        self.assertEqual(bench.median([3.0, 1.0, 2.0]), 2.0)
        self.assertEqual(bench.pick_rate({"a": 1234.0, "b": 3000.0}), 610)
        self.assertEqual(bench.pick_rate({"a": 57.0}), 28)
        self.assertIsNone(bench.pick_rate({"a": None}))

    def test_icount_shift(self):
        self.assertEqual(bench.icount_shift("2"), 2)
        self.assertEqual(bench.icount_shift("shift=3,sleep=off"), 3)
        self.assertIsNone(bench.icount_shift("shift=auto"))
        self.assertIsNone(bench.icount_shift(None))

    def test_modes(self):
        names = [m[0] for m in bench.modes()]
        self.assertEqual(names, ["kernel_udp", "user_busy", "user_interval", "user_adaptive", "kernel_udp_tunneled"])


class DryRun(unittest.TestCase):
    def bench_run(self, icount="2"):
        out = tempfile.mkdtemp(prefix="emtun-bench-")
        self.addCleanup(shutil.rmtree, out, True)
        a = bench.build_parser().parse_args(["--image", "x", "--data", "y", "--out", out, "--runs", "3"] +
                                            (["--icount", icount] if icount else []))
        a.modes = [m[0] for m in bench.modes()]
        a.g_env, a.watchdog_us_run = "TUN=emtunctl ", 2000000
        r = bench.Bench(a)
        r.dut, r.peer = FakeBenchVM("dut"), FakeBenchVM("peer")
        r.dut.peer_view = r.peer
        r.have = {"emtunctl": True, "pingpong": True, "fwd": True, "probe": True}
        r.kernel_tunnel = True
        return r

    def scenario(self, r, name):
        from unittest import mock
        t = harness.Tap(name)
        # the pauses are for the guests' NICs; a dry run has none
        with contextlib.redirect_stderr(io.StringIO()), mock.patch.object(bench.time, "sleep"):
            getattr(r, "sc_" + name)(t)
        return t

    def test_pairs(self):
        r = self.bench_run()
        # the rate stays fixed across runs: count the client runs per server
        orig = r.peer.run

        def run(cmd, timeout):
            if "--rate" in cmd:
                r.dut.windows += 1
            return orig(cmd, timeout)
        r.peer.run = run
        t = self.scenario(r, "pairs")
        self.assertEqual(t.failed, 0, t.text())
        f = t.figures
        self.assertEqual(f["saturation_pairs_per_s"]["kernel_udp"], 1200.0)
        self.assertEqual(f["fixed_rate_pairs_per_s"], 600)
        fr = f["fixed_rate"]
        self.assertEqual(fr["kernel_udp"]["runs"], 3)
        self.assertEqual(fr["kernel_udp"]["cpu_us_per_pair_median"], 404.0)
        self.assertTrue(fr["user_interval"]["sustained"])
        self.assertEqual(f["best_user_mode"], "user_interval")
        self.assertAlmostEqual(f["ratio_cpu_per_pair_kernel_udp_vs_best_user"], 404.0 / 30.3, places=2)
        self.assertEqual(fr["kernel_udp"]["insn_per_pair_median"], 101000)
        self.assertEqual(f["max_spread_pct"], 1.98)
        self.assertEqual(f["exact_max_spread_pct"], 0.0)
        self.assertAlmostEqual(f["exact_ratio_cpu_per_pair_kernel_udp_vs_best_user"], 400.0 / 30.0, places=2)
        # the peer's client is the same cheap netmap path in every mode; kernel modes speak UDP
        clients = [c for c in r.peer.calls if "--role client" in c]
        self.assertTrue(all(" em0 " in c and "--poll busy" in c and "--window 64" in c for c in clients))
        self.assertEqual(sum("--udp-over-netmap 198.18.0.1:7778" in c for c in clients), 2 * (1 + 3))
        # the tunneled kernel mode runs emtunctl's tunnel beside the UDP server
        self.assertTrue(any(c.startswith("tun bt adaptive") for c in r.dut.calls))

    def test_tcp_and_anchor(self):
        r = self.bench_run(icount=None)
        t = self.scenario(r, "tcp")
        self.assertEqual(t.failed, 0, t.text())
        tcp = t.figures["tcp"]
        self.assertEqual(set(tcp), {"default", "busy", "interval", "adaptive"})
        self.assertEqual(tcp["busy"]["ratio_tcp_vs_default"], 1.0)
        self.assertEqual(tcp["adaptive"]["rtt_added_ms"], 0.3)
        # TCP is timed on the peer: the peer sends
        self.assertTrue(any(c.startswith("tx 198.18.0.1 ") for c in r.peer.calls))
        t = self.scenario(r, "anchor")
        self.assertEqual(t.failed, 0, t.text())
        an = t.figures["anchor"]
        self.assertEqual(an["bridge"]["kill9_outage_ms"], 3300.0)
        self.assertTrue(an["bridge"]["sigstop_capped"])
        self.assertEqual(an["bridge"]["sigstop_outage_ms"], 10000)
        self.assertEqual(an["emtun"]["kill9_outage_ms"], 1100.0)
        self.assertEqual(an["ratio_kill9_outage_bridge_vs_emtun"], 3.0)
        self.assertTrue(any("bridge -i netmap:em0 -i netmap:em0^" in c for c in r.dut.calls))
        self.assertTrue(any(c == "kill -9 4242; true" for c in r.dut.calls))

    def test_summary(self):
        rep = {"accelerator": "tcg", "scenarios": {
            "pairs": {"figures": {"icount_shift": 2.0, "fixed_rate_pairs_per_s": 600,
                                  "saturation_pairs_per_s": {"kernel_udp": 1200.0},
                                  "fixed_rate": {"kernel_udp": {"cpu_us_per_pair_median": 400.0, "spread_pct": 1.0}},
                                  "ratio_cpu_per_pair_kernel_udp_vs_best_user": 13.2, "max_spread_pct": 2.0}},
            "tcp": {"figures": {"ratio_tcp_tunnel_vs_default_min": 0.95}},
            "anchor": {"figures": {"anchor": {"ratio_kill9_outage_bridge_vs_emtun": 3.0}}}}}
        s = bench.summary(rep)
        table = bench.markdown(rep)
        self.assertIn("| kernel UDP, default mode | 1200 | 400.0 µs |", table)
        self.assertIn("| cpu_per_pair_kernel_udp_vs_best_user (>= 10) | 13.20 |", table)
        self.assertEqual(s["modes"]["kernel_udp"]["cpu_us_per_pair"], 400.0)
        self.assertEqual(s["goals"]["cpu_per_pair_kernel_udp_vs_best_user (>= 10)"], 13.2)
        self.assertEqual(s["goals"]["kill9_outage_bridge_vs_emtun (>= 20)"], 3.0)


class Entry(unittest.TestCase):
    def test_bench_mode_skips_without_image(self):
        env = dict(os.environ, BENCH="1")
        env.pop("IMAGE", None)
        p = subprocess.run(["sh", os.path.join(HERE, "run.sh")], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertIn("SKIP", p.stdout)

    def test_icount_only_under_tcg(self):
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit):
            bench.main(["--image", "x", "--data", "y", "--out", tempfile.gettempdir(), "--accel", "kvm",
                        "--icount", "2"])

    def test_vm_start_icount(self):
        """The DUT alone gets -icount and single-threaded TCG; vm-test's default stays off."""
        a = argparse.Namespace(accel="tcg", icount="2", qemu="/bin/false", nic="e1000")
        cmds = {}
        for name in ("dut", "peer"):
            d = tempfile.mkdtemp(prefix="emtun-vm-")
            self.addCleanup(shutil.rmtree, d, True)
            vm = harness.VM(name, a, d)
            with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(harness.VMDead):
                vm.start("img", "data", "socket,id=n0,listen=127.0.0.1:1", "52:54:00:e7:00:01", 1, 512)
            vm.console_log.close()
            cmds[name] = vm.qemu_cmd
        self.assertIn("tcg,thread=single", cmds["dut"])
        self.assertIn("shift=2,sleep=on", cmds["dut"])
        self.assertIn("tcg,thread=multi", cmds["peer"])
        self.assertNotIn("-icount", cmds["peer"])


if __name__ == "__main__":
    unittest.main()
