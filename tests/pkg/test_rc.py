"""Host-side tests of the service files (no FreeBSD needed; run in CI by make unit):
    python3 -m unittest discover -s tests/pkg -p 'test_*.py'

The rc.d script runs under the Linux /bin/sh (dash, like FreeBSD's sh an ash) against a
minimal rc.subr and stand-ins for ifconfig, sysctl, daemon and emtunctl (mock/), and
the devd rules are matched against netmap_tun(4) events by a small model of devd's
notify matching."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RC = os.path.join(ROOT, "pkg", "freebsd", "net", "emtun", "files", "emtun.in")
DEVD = os.path.join(ROOT, "pkg", "devd", "emtun.conf")
sys.dont_write_bytecode = True


class RcScript(unittest.TestCase):
    def setUp(self):
        self.t = tempfile.mkdtemp(prefix="emtun-rc-")
        self.mock = os.path.join(self.t, "mock")
        self.bin = os.path.join(self.t, "bin")
        self.prefix = os.path.join(self.t, "prefix")
        for d in (self.mock, self.bin, os.path.join(self.prefix, "sbin"), os.path.join(self.mock, "run")):
            os.makedirs(d)
        shutil.copy(os.path.join(HERE, "mock", "rc.subr"), self.t)
        mock = os.path.join(HERE, "mock", "mock.py")
        for n in ("ifconfig", "sysctl", "daemon"):
            os.symlink(mock, os.path.join(self.bin, n))
        os.symlink(mock, os.path.join(self.prefix, "sbin", "emtunctl"))
        with open(RC) as f:
            text = f.read()
        self.assertIn("%%PREFIX%%", text)
        # what make install and USE_RC_SUBR do, plus the test's rc.subr
        text = text.replace("%%PREFIX%%", self.prefix).replace("/etc/rc.subr", os.path.join(self.t, "rc.subr"))
        self.script = os.path.join(self.t, "emtun")
        with open(self.script, "w") as f:
            f.write(text)
        self.caps0 = "RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,VLAN_HWCSUM,TSO4,LRO,WOL_MAGIC,LINKSTATE"
        self.put("caps.em0", self.caps0)
        self.put("state.em0", "default")
        self.rcconf(emtun_enable="YES", emtun_ifaces="em0", emtun_em0_claim="0x88b5",
                    emtun_em0_watchdog="10ms", emtun_em0_poll="busy")

    def tearDown(self):
        run = os.path.join(self.mock, "run")
        for f in os.listdir(run):
            if f.endswith(".pid"):
                try:
                    with open(os.path.join(run, f)) as pf:
                        os.kill(int(pf.read()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        shutil.rmtree(self.t, ignore_errors=True)

    def put(self, name, text):
        with open(os.path.join(self.mock, name), "w") as f:
            f.write(text + "\n")

    def get(self, name):
        try:
            with open(os.path.join(self.mock, name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def rcconf(self, **kv):
        kv.setdefault("emtun_rundir", os.path.join(self.mock, "run"))
        kv.setdefault("emtun_start_wait", "2")
        kv.setdefault("emtun_stop_timeout", "3")
        self.put("rc.conf", "\n".join("%s=%s" % (k, shquote(v)) for k, v in kv.items()))

    def rc(self, *args, rc=0):
        env = {"PATH": self.bin + ":/usr/bin:/bin", "MOCK": self.mock}
        p = subprocess.run(["sh", self.script] + list(args), env=env, capture_output=True, text=True, timeout=60)
        if rc is not None:
            self.assertEqual(p.returncode, rc, "rc %s: %s\n%s" % (args, p.stdout, p.stderr))
        return p

    def daemon_calls(self):
        text = self.get("daemon.json") or ""
        return [json.loads(l) for l in text.splitlines()]

    def caps(self):
        return set(self.get("caps.em0").split(","))

    def test_shell_syntax(self):
        subprocess.run(["sh", "-n", RC], check=True, timeout=30)

    def test_start_arms_records_offloads_and_supervises(self):
        p = self.rc("start")
        self.assertIn("turned off txcsum tso4 vlanhwtag", p.stdout)
        self.assertIn("em0: tunneled", p.stdout)
        self.assertEqual(self.get("state.em0"), "tunneled")
        self.assertEqual(self.get("watchdog.em0"), "10ms")
        self.assertEqual(self.get("run/emtun_em0.offloads"), "txcsum tso4 vlanhwtag")
        self.assertFalse({"TXCSUM", "TSO4", "VLAN_HWTAGGING"} & self.caps())
        (call,) = self.daemon_calls()
        o = call["opts"]
        self.assertTrue(o["-f"] and o["-r"] and o["-S"])
        self.assertEqual((o["-R"], o["-T"], o["-t"]), ("1", "emtun", "emtun em0"))
        self.assertEqual(o["-P"], os.path.join(self.mock, "run", "emtun_em0.pid"))
        self.assertEqual(o["-p"], os.path.join(self.mock, "run", "emtun_em0.child.pid"))
        self.assertEqual(call["argv"], [os.path.join(self.prefix, "sbin", "emtunctl"), "run", "em0",
                                        "--claim", "0x88b5", "--poll", "busy", "--reattach"])
        # status: supervisor and child pids, then emtunctl status of the one interface
        p = self.rc("status")
        self.assertRegex(p.stdout, r"em0: supervised by daemon pid \d+, tunnel pid \d+")
        self.assertIn("STATUS em0 state=tunneled", p.stdout)
        # a second start does not start a second supervisor
        self.assertIn("already running", self.rc("start").stdout)
        self.assertEqual(len(self.daemon_calls()), 1)

    def test_stop_disarms_and_restores_offloads(self):
        self.rc("start")
        p = self.rc("stop")
        self.assertIn("turned on again txcsum tso4 vlanhwtag", p.stdout)
        self.assertIn("em0: state default", p.stdout)
        self.assertEqual(self.get("state.em0"), "default")
        self.assertEqual(self.caps(), set(self.caps0.split(",")))
        self.assertEqual(os.listdir(os.path.join(self.mock, "run")), [])
        self.assertIn("ifconfig em0 txcsum tso4 vlanhwtag", self.get("log"))  # one call, in order
        self.assertIn("emtunctl disarm em0", self.get("log"))
        self.assertIn("em0: not running", self.rc("status", rc=1).stdout)

    def test_stop_repeats_sigterm(self):
        # daemon(8) of FreeBSD 14 ignores SIGTERM while it sleeps before a restart
        self.rc("start")
        self.put("ignore_term", "1")
        self.rc("stop")
        self.assertIn("supervisor ignored SIGTERM", self.get("log"))
        self.assertIn("supervisor exit", self.get("log"))
        self.assertEqual(self.get("state.em0"), "default")

    def test_restore_offloads_no(self):
        self.rcconf(emtun_enable="YES", emtun_ifaces="em0", emtun_restore_offloads="NO")
        self.rc("start")
        self.assertIn("left off txcsum tso4 vlanhwtag", self.rc("stop").stdout)
        self.assertFalse({"TXCSUM", "TSO4", "VLAN_HWTAGGING"} & self.caps())

    def test_offloads_already_off_stay_off(self):
        self.put("caps.em0", "RXCSUM,VLAN_MTU,TSO4")
        self.rc("start")
        self.assertEqual(self.get("run/emtun_em0.offloads"), "tso4")
        self.rc("stop")
        self.assertEqual(self.caps(), {"RXCSUM", "VLAN_MTU", "TSO4"})

    def test_command_knob_and_defaults(self):
        self.rcconf(emtun_enable="YES", emtun_ifaces="em0 em1", emtun_restart_delay="2",
                    emtun_em0_command="/opt/app em0 --name 'two words'", emtun_reattach="NO")
        self.put("caps.em1", "RXCSUM,TXCSUM")
        self.put("state.em1", "default")
        self.rc("start")
        c0, c1 = self.daemon_calls()
        self.assertEqual(c0["argv"], ["/opt/app", "em0", "--name", "two words"])
        self.assertEqual(c0["opts"]["-R"], "2")
        self.assertEqual(c1["argv"], [os.path.join(self.prefix, "sbin", "emtunctl"), "run", "em1"])
        p = self.rc("status")
        self.assertIn("STATUS all", p.stdout)  # several interfaces: emtunctl status of all
        self.rc("stop")
        self.assertEqual(self.get("state.em1"), "default")
        self.assertIn("TXCSUM", self.get("caps.em1"))

    def test_max_retries(self):
        self.rcconf(emtun_enable="YES", emtun_ifaces="em0", emtun_max_retries="5")
        self.rc("start")
        self.assertEqual(self.daemon_calls()[0]["argv"][-3:], ["--reattach", "--max-retries", "5"])

    def test_arm_failure_restores_and_fails(self):
        self.put("armfail", "1")
        p = self.rc("start", rc=1)
        self.assertIn("emtunctl arm failed", p.stderr)
        self.assertEqual(self.caps(), set(self.caps0.split(",")))
        self.assertEqual(self.daemon_calls(), [])

    def test_foreign_owner_and_stale_pidfile(self):
        self.put("state.em0", "tunneled")
        self.put("owner_pid.em0", "4242")
        self.assertIn("tunneled by pid", self.rc("start", rc=1).stderr)
        self.put("state.em0", "default")
        # a pid file naming a live process that is not daemon(8): not running
        with open(os.path.join(self.mock, "run", "emtun_em0.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        self.assertIn("em0: not running", self.rc("status", rc=1).stdout)
        self.assertIn("em0: tunneled", self.rc("start").stdout)

    def test_stock_kernel_and_bad_names(self):
        os.unlink(os.path.join(self.mock, "state.em0"))
        self.assertIn("kernel with the emtun patch", self.rc("start", rc=1).stderr)
        self.assertIn("not an em(4) or igb(4) interface", self.rc("start", "re0", rc=1).stderr)
        self.assertIn("not an em(4) or igb(4) interface", self.rc("start", "em0x", rc=1).stderr)

    def test_enable_and_subset(self):
        self.rcconf(emtun_enable="NO", emtun_ifaces="em0")
        self.assertIn("Cannot 'start'", self.rc("start").stdout)
        self.assertEqual(self.daemon_calls(), [])
        self.put("caps.em1", "RXCSUM")
        self.put("state.em1", "default")
        self.rc("onestart", "em1")
        (call,) = self.daemon_calls()
        self.assertEqual(call["argv"][1:3], ["run", "em1"])
        # stop without arguments also finds em1 through its pid file
        p = self.rc("onestop")
        self.assertIn("em1: tunnel stopped", p.stdout)
        self.assertEqual(self.get("state.em1"), "default")

    def test_shellcheck(self):
        if not shutil.which("shellcheck"):
            self.skipTest("shellcheck not installed")
        subprocess.run(["shellcheck", "-s", "sh", RC], check=True, timeout=60)


class RealRcSubr(RcScript):
    """The same tests against FreeBSD's own rc.subr when a FreeBSD source tree is at hand
    (FREEBSD_SRC=/usr/src); its /etc paths point into the test's directory."""

    def setUp(self):
        src = os.path.join(os.environ.get("FREEBSD_SRC", "/usr/src"), "libexec", "rc", "rc.subr")
        if not os.path.isfile(src):
            self.skipTest("no FreeBSD rc.subr (set FREEBSD_SRC)")
        super().setUp()
        with open(src) as f:
            text = f.read()
        text = text.replace("/etc/defaults/rc.conf", os.path.join(self.t, "no-defaults")) \
            .replace("/etc/rc.conf", os.path.join(self.mock, "rc.conf"))
        with open(os.path.join(self.t, "rc.subr"), "w") as f:
            f.write(text)
        with open(os.path.join(self.bin, "kenv"), "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(os.path.join(self.bin, "kenv"), 0o755)


def shquote(v):
    return "'" + v.replace("'", "'\\''") + "'"


class DevdRules(unittest.TestCase):
    """A model of devd(8)'s notify matching: variables from the event's key=value words,
    regex match with an implicit ^$, the highest-priority matching rule's action runs,
    $var expanded."""

    @staticmethod
    def rules():
        with open(DEVD) as f:
            text = re.sub(r"#.*", "", f.read())
        out = []
        for prio, body in re.findall(r"notify\s+(\d+)\s*\{(.*?)\};", text, re.S):
            matches = re.findall(r'match\s+"(\w+)"\s+"([^"]*)"\s*;', body)
            (action,) = re.findall(r'action\s+"([^"]*)"\s*;', body)
            out.append((int(prio), matches, action))
        return out

    def fire(self, event):
        v = dict(w.split("=", 1) for w in event.lstrip("!").split())
        hits = [(p, a) for p, ms, a in self.rules() if all(re.fullmatch(rx, v.get(k, "")) for k, rx in ms)]
        if not hits:
            return None
        action = max(hits)[1]
        return re.sub(r"\$([A-Za-z_][A-Za-z0-9_-]*)", lambda m: v.get(m.group(1), ""), action)

    def test_rules_parse(self):
        r = self.rules()
        self.assertEqual(len(r), 3)
        with open(DEVD) as f:
            text = f.read()
        self.assertEqual(text.count("{"), text.count("}"))

    def test_events(self):
        self.assertEqual(self.fire("!system=ETHERNET subsystem=em0 type=TUNNEL state=tunneled reason=register pid=812"),
                         "logger -t emtun -p daemon.notice em0: tunnel state=tunneled reason=register pid=812")
        self.assertEqual(self.fire("!system=ETHERNET subsystem=em0 type=TUNNEL state=revoked reason=watchdog pid=812"),
                         "logger -t emtun -p daemon.warning em0: tunnel state=revoked reason=watchdog pid=812")
        self.assertIn("reason=close", self.fire("!system=ETHERNET subsystem=igb1 type=TUNNEL state=armed reason=close pid=9"))
        for reason in ("reconfig", "refused_mtu", "detach"):
            self.assertIn("daemon.warning em0: tunnel state=revoked reason=%s" % reason,
                          self.fire("!system=ETHERNET subsystem=em0 type=TUNNEL state=revoked reason=%s pid=7" % reason))
        self.assertEqual(self.fire("!system=ETHERNET subsystem=em0 type=FULL_RESET cause=dma_busy"),
                         "logger -t emtun -p daemon.warning em0: full NIC reset in a tunnel switch cause=dma_busy")
        self.assertIsNone(self.fire("!system=ETHERNET subsystem=em0 type=IFATTACH"))
        self.assertIsNone(self.fire("!system=IFNET subsystem=em0 type=LINK_UP"))

    def test_event_format_of_the_kernel(self):
        # the kernel agent's devctl_notify data is what the rules expect
        src = os.path.join(ROOT, "kmod-patch", "sys", "dev", "netmap", "netmap_tun.c")
        with open(src) as f:
            c = f.read()
        self.assertIn('"state=%s reason=%s pid=%d"', c)
        self.assertIn('devctl_notify("ETHERNET", if_name(tun->nt_ifp), "TUNNEL", data)', c)
        self.assertIn('"FULL_RESET",', c)
        self.assertIn('snprintf(data, sizeof(data), "cause=%s"', c)
        for reason in ("register", "close", "watchdog", "admin", "detach", "reconfig", "refused_mtu"):
            self.assertIn('= "%s",' % reason, c)


DEVD_STUB = r"""
#include <stdio.h>
#include <stdlib.h>
#include "devd.h"
extern FILE *yyin;
static int nev;
void add_attach(int p, struct event_proc *e) { (void)p; (void)e; }
void add_detach(int p, struct event_proc *e) { (void)p; (void)e; }
void add_directory(const char *d) { (void)d; }
void add_nomatch(int p, struct event_proc *e) { (void)p; (void)e; }
void add_notify(int p, struct event_proc *e) { printf("notify %d\n", p); (void)e; nev++; }
struct event_proc *add_to_event_proc(struct event_proc *e, struct eps *x)
{ (void)x; return e ? e : (struct event_proc *)1; }
struct eps *new_match(const char *a, const char *b) { printf("match %s %s\n", a, b); return (struct eps *)1; }
struct eps *new_media(const char *a, const char *b) { (void)a; (void)b; return (struct eps *)1; }
struct eps *new_action(const char *a) { printf("action %s\n", a); return (struct eps *)1; }
void set_pidfile(const char *p) { (void)p; }
void set_variable(const char *a, const char *b) { (void)a; (void)b; }
int main(int argc, char **argv)
{ (void)argc; if (!(yyin = fopen(argv[1], "r"))) return 2; yyparse(); printf("rules %d\n", nev); return 0; }
"""


class DevdGrammar(unittest.TestCase):
    """emtun.conf through devd(8)'s own grammar (parse.y, token.l of a FreeBSD source tree,
    FREEBSD_SRC=/usr/src), built here with yacc, lex and cc against stub actions."""

    def test_parses(self):
        src = os.path.join(os.environ.get("FREEBSD_SRC", "/usr/src"), "sbin", "devd")
        tools = [shutil.which(x) for x in ("yacc", "lex", "cc")]
        if not os.path.isfile(os.path.join(src, "parse.y")) or not all(tools):
            self.skipTest("no FreeBSD devd sources (set FREEBSD_SRC) or no yacc/lex/cc")
        t = tempfile.mkdtemp(prefix="emtun-devd-")
        try:
            for f in ("parse.y", "token.l", "devd.h"):
                shutil.copy(os.path.join(src, f), t)
            with open(os.path.join(t, "stub.c"), "w") as f:
                f.write(DEVD_STUB)
            run = lambda *c: subprocess.run(c, cwd=t, check=True, capture_output=True, text=True, timeout=120)
            run("yacc", "-d", "parse.y")
            run("lex", "token.l")
            run("cc", "-o", "devdparse", "-D__BEGIN_DECLS=", "-D__END_DECLS=", "y.tab.c", "lex.yy.c", "stub.c")
            out = run(os.path.join(t, "devdparse"), DEVD).stdout
        finally:
            shutil.rmtree(t, ignore_errors=True)
        self.assertIn("rules 3", out)
        self.assertEqual(out.count("match system ETHERNET"), 3)
        self.assertEqual(out.count("match type TUNNEL"), 2)
        self.assertIn("match reason (watchdog|detach|reconfig|refused_mtu)", out)
        self.assertIn("action logger -t emtun -p daemon.notice $subsystem: tunnel state=$state reason=$reason pid=$pid",
                      out)


class Install(unittest.TestCase):
    def test_install_service(self):
        make = shutil.which("make")
        if not make:
            self.skipTest("make not installed")
        d = tempfile.mkdtemp(prefix="emtun-inst-")
        try:
            subprocess.run([make, "-s", "-C", ROOT, "install-service", "DESTDIR=" + d, "PREFIX=/opt/x"],
                           check=True, capture_output=True, timeout=60)
            rc = os.path.join(d, "opt/x/etc/rc.d/emtun")
            self.assertEqual(os.stat(rc).st_mode & 0o777, 0o555)
            with open(rc) as f:
                text = f.read()
            self.assertIn('emtunctl="/opt/x/sbin/emtunctl"', text)
            self.assertNotIn("%%PREFIX%%", text)
            self.assertTrue(os.path.isfile(os.path.join(d, "opt/x/etc/devd/emtun.conf")))
            self.assertTrue(os.path.isfile(os.path.join(d, "opt/x/share/man/man8/emtun.8")))
        finally:
            shutil.rmtree(d, ignore_errors=True)


class Port(unittest.TestCase):
    """The port's do-install, run by bmake against a stand-in bsd.port.mk, stages exactly
    the files of pkg-plist (check-plist without a ports tree)."""
    PORT = os.path.join(ROOT, "pkg", "freebsd", "net", "emtun")

    def test_version_is_the_workspace_version(self):
        with open(os.path.join(ROOT, "Cargo.toml")) as f:
            m = re.search(r'\[workspace\.package\][^\[]*?\nversion\s*=\s*"([^"]+)"', f.read())
        with open(os.path.join(self.PORT, "Makefile")) as f:
            port = re.search(r"^DISTVERSION=\s*(\S+)", f.read(), re.M)
        self.assertTrue(m and port)
        self.assertEqual(port.group(1), m.group(1), "bump DISTVERSION in pkg/freebsd/net/emtun/Makefile")

    def test_plist_matches_do_install(self):
        bmake = shutil.which("bmake") or (shutil.which("make") if sys.platform.startswith("freebsd") else None)
        if not bmake:
            self.skipTest("bmake not installed")
        t = tempfile.mkdtemp(prefix="emtun-port-")
        try:
            mk = os.path.join(t, "mk")
            os.makedirs(mk)
            open(os.path.join(mk, "sys.mk"), "w").close()
            with open(os.path.join(mk, "bsd.port.mk"), "w") as f:
                f.write("INSTALL_PROGRAM=install -m 555\nINSTALL_MAN=install -m 444\n"
                        "INSTALL_DATA=install -m 444\nMKDIR=mkdir -p\n"
                        "CARGO_TARGET_DIR=${WRKDIR}/target\nCARGO_BUILD_TARGET=x86_64-unknown-freebsd\n"
                        "DATADIR=${PREFIX}/share/${PORTNAME}\n")
            rel = os.path.join(t, "target", "x86_64-unknown-freebsd", "release")
            os.makedirs(os.path.join(rel, "examples"))
            for b in ("emtunctl", "examples/fwd", "examples/pingpong"):
                open(os.path.join(rel, b), "w").close()
            stage, prefix = os.path.join(t, "stage"), "/usr/local"
            for d in ("sbin", "bin", "share/man/man8", "share/man/man4"):  # the mtree of a stage dir
                os.makedirs(os.path.join(stage + prefix, d))
            subprocess.run([bmake, "-m", mk, "-C", self.PORT, "do-install", "WRKDIR=" + t, "WRKSRC=" + ROOT,
                            "STAGEDIR=" + stage, "PREFIX=" + prefix],
                           check=True, capture_output=True, timeout=60)
            staged = set()
            for dp, _, fs in os.walk(stage + prefix):
                for f in fs:
                    rel_path = os.path.relpath(os.path.join(dp, f), stage + prefix)
                    staged.add(rel_path + ".gz" if rel_path.startswith("share/man/") else rel_path)
            with open(os.path.join(self.PORT, "pkg-plist")) as f:
                plist = {l.strip().replace("%%DATADIR%%", "share/emtun") for l in f if l.strip()}
            self.assertEqual(staged, plist)
            # USE_RC_SUBR installs files/emtun.in; SUB_FILES makes pkg-message from files/
            self.assertTrue(os.path.isfile(os.path.join(self.PORT, "files", "emtun.in")))
            self.assertTrue(os.path.isfile(os.path.join(self.PORT, "files", "pkg-message.in")))
        finally:
            shutil.rmtree(t, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
