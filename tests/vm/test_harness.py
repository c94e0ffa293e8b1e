"""Host-side checks of the VM harness that need no FreeBSD image (run in CI):
    python3 -m unittest discover -s tests/vm -p 'test_*.py'
"""
import contextlib
import io
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import harness  # noqa: E402


class Parsers(unittest.TestCase):
    def test_pingpong_line(self):
        out = ("pingpong mode=netmap role=client pairs=2000 lost=0 secs=4.196 pairs_per_s=477 cpu_s=1.124 "
               "cpu_pct=26.8 pairs_per_cpu_s=1779 rtt_min_us=304.9 rtt_avg_us=2091.4 rtt_p99_us=6080.7\n"
               '{"rc":0,"wall_s":4.3,"guest_busy_pct":10.61}\n')
        r = harness.parse_pingpong(out)
        self.assertEqual(r["pairs_per_s"], 477.0)
        self.assertEqual(r["pairs"], 2000.0)
        self.assertEqual(r["mode"], "netmap")
        self.assertEqual(harness.parse_json(out)["guest_busy_pct"], 10.61)

    def test_app_stats_fwd_and_emtunctl(self):
        fwd = "fwd em0: to_app=1 from_app=0 to_host=5 from_host=6 backpressure=0 drop_runt=0"
        self.assertEqual(harness.parse_app_stats(fwd), {"to_app": 1, "from_app": 0, "to_host": 5, "from_host": 6})
        ctl = ("log: em0: ran 1.5s\nlog:   to_app                  3  claimed frames (150 bytes)\n"
               "log:   from_app 0\nlog:   to_host   2000  NIC -> kernel stack (0/s)\nlog:   from_host  1000  k\n")
        self.assertEqual(harness.parse_app_stats(ctl), {"to_app": 3, "from_app": 0, "to_host": 2000, "from_host": 1000})

    def test_json_any(self):
        self.assertEqual(harness.parse_json_any('noise {"schema":1,"interfaces":[]} tail'),
                         {"schema": 1, "interfaces": []})
        self.assertIsNone(harness.parse_json_any("no json here"))

    def test_stats(self):
        self.assertEqual(harness.stats([3.0, 1.0, None, 2.0]), {"n": 3, "min": 1.0, "median": 2.0, "max": 3.0})
        self.assertIsNone(harness.stats([None]))

    def test_tap(self):
        t = harness.Tap("x")
        # Tap.ok logs every check; keep this test's deliberate "NOT OK" off the test output.
        with contextlib.redirect_stderr(io.StringIO()) as logged:
            t.ok(True, "a")
            t.ok(False, "b", todo="known")
            t.ok(True, "c", skip="why")
            t.ok(False, "d", k=1)
        self.assertIn("x: NOT OK d", logged.getvalue())
        self.assertEqual(t.failed, 1)
        text = t.text()
        self.assertIn("1..4", text)
        self.assertIn("not ok 2 - b # TODO known", text)
        self.assertIn("ok 3 - c # SKIP why", text)
        self.assertIn("not ok 4 - d", text)


class StatusSchema(unittest.TestCase):
    GOLDEN = os.path.join(HERE, "..", "..", "ctl", "tests", "data", "status-schema1.json")

    def golden(self):
        with open(self.GOLDEN) as f:
            return json.load(f)

    def test_emtunctls_golden_output_conforms(self):
        self.assertEqual(harness.status_schema_errors(self.golden()), [])

    def test_departures_are_named(self):
        js = self.golden()
        del js["interfaces"][0]["owner_pid"]
        js["interfaces"][0]["state"] = "up"
        js["interfaces"][0]["stats"]["enter"] = "1"
        errs = harness.status_schema_errors(js)
        self.assertIn("interfaces[0] lacks owner_pid", errs)
        self.assertTrue(any("state 'up'" in e for e in errs), errs)
        self.assertTrue(any("stats.enter" in e for e in errs), errs)
        self.assertEqual(len(harness.status_schema_errors({"interfaces": []})), 1)
        js = self.golden()
        js["interfaces"][0]["unit"] = True
        self.assertEqual(harness.status_schema_errors(js), ["interfaces[0].unit has type bool"])


class Entry(unittest.TestCase):
    def test_skips_without_image(self):
        env = dict(os.environ)
        env.pop("IMAGE", None)
        p = subprocess.run(["sh", os.path.join(HERE, "run.sh")], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertIn("SKIP: no FreeBSD image given", p.stdout)

    def test_missing_image_is_an_error(self):
        p = subprocess.run(["sh", os.path.join(HERE, "run.sh"), "/nonexistent/disk.img"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)

    def test_guest_script_parses(self):
        subprocess.run(["sh", "-n", os.path.join(HERE, "guest", "g.sh")], check=True, timeout=60)


if __name__ == "__main__":
    unittest.main()
