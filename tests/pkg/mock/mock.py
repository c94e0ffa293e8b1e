#!/usr/bin/env python3
"""Stand-ins for ifconfig, sysctl, daemon and emtunctl, for tests/pkg/test_rc.py.
One file, dispatched on the name it is called by; state lives in $MOCK:
caps.IF (enabled capabilities, comma-separated, as ifconfig's options=<...>),
state.IF (tunnel state; absent = stock kernel), log (every call), daemon.json."""
import json
import os
import signal
import subprocess
import sys
import time

M = os.environ["MOCK"]
KW = {"txcsum": "TXCSUM", "txcsum6": "TXCSUM_IPV6", "tso4": "TSO4", "tso6": "TSO6",
      "vlanhwtag": "VLAN_HWTAGGING", "lro": "LRO", "rxcsum": "RXCSUM"}
OFFLOADS = ["txcsum", "txcsum6", "tso4", "tso6", "vlanhwtag"]


def rd(name, default=None):
    try:
        with open(os.path.join(M, name)) as f:
            return f.read().strip()
    except OSError:
        return default


def wr(name, text):
    with open(os.path.join(M, name), "w") as f:
        f.write(text + "\n")


def log(line):
    with open(os.path.join(M, "log"), "a") as f:
        f.write(line + "\n")


def caps(iface):
    c = rd("caps." + iface)
    return [x for x in c.split(",") if x] if c is not None else None


def ifconfig(args):
    iface, rest = args[0], args[1:]
    c = caps(iface)
    if c is None:
        print("ifconfig: interface %s does not exist" % iface, file=sys.stderr)
        return 1
    if not rest:
        print("%s: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500" % iface)
        print("\toptions=81209b<%s>" % ",".join(c))
        print("\tether 52:54:00:e7:00:01")
        print("\tinet 198.18.0.1 netmask 0xffffff00 broadcast 198.18.0.255")
        print("\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>")
        return 0
    log("ifconfig " + " ".join(args))
    for kw in rest:
        on = not kw.startswith("-")
        cap = KW[kw.lstrip("-")]
        c = [x for x in c if x != cap] + ([cap] if on else [])
    wr("caps." + iface, ",".join(c))
    return 0


def sysctl(args):
    name = args[-1]
    parts = name.split(".")  # dev.em.0.tunnel.state, dev.em.0.tunnel.owner_pid
    iface = parts[1] + parts[2]
    st = rd("state." + iface)
    if st is not None and parts[-1] == "owner_pid":
        st = rd("owner_pid." + iface, "0")
    if st is None:
        print("sysctl: unknown oid '%s'" % name, file=sys.stderr)
        return 1
    print(st)
    return 0


def emtunctl(args):
    log("emtunctl " + " ".join(args))
    cmd, iface = args[0], (args[1] if len(args) > 1 else None)
    if cmd == "arm":
        c = caps(iface)
        off = [k for k in OFFLOADS if KW[k] in c]
        wr("caps." + iface, ",".join(x for x in c if x not in [KW[k] for k in OFFLOADS]))
        if off:
            print("%s: turned off %s" % (iface, " ".join(off)))
        if rd("armfail"):
            print("emtunctl: %s: sysctl enable: operation not supported" % iface, file=sys.stderr)
            return 1
        if "--watchdog" in args:
            wr("watchdog." + iface, args[args.index("--watchdog") + 1])
        wr("state." + iface, "armed")
        print("%s: armed" % iface)
    elif cmd == "disarm":
        wr("state." + iface, "default")
    elif cmd in ("status", "stats"):
        print("%s %s state=%s" % (cmd.upper(), iface or "all", rd("state." + (iface or "em0"))))
    return 0


def daemon(args):
    """daemon [-f] [-r] [-R n] [-P f] [-p f] [-S] [-T tag] [-t title] cmd...: record the
    call; a background supervisor holds the pid files, sets the state tunneled, and on
    SIGTERM (ignoring the first $MOCK/ignore_term ones) sets it armed and exits."""
    opts, i = {}, 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("-R", "-P", "-p", "-T", "-t"):
            opts[args[i]] = args[i + 1]
            i += 2
        else:
            opts[args[i]] = True
            i += 1
    with open(os.path.join(M, "daemon.json"), "a") as f:
        f.write(json.dumps({"opts": opts, "argv": args[i:]}) + "\n")
    iface = opts["-t"].split()[-1]  # "emtun em0"
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "supervise", opts["-P"], opts["-p"], iface],
                     start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(opts["-P"]):
            break
        time.sleep(0.02)
    return 0


def supervise(P, p, iface):
    # ps -o comm= must say daemon, as for daemon(8) (Linux: prctl PR_SET_NAME)
    import ctypes
    ctypes.CDLL(None).prctl(15, b"daemon", 0, 0, 0)
    child = subprocess.Popen(["sleep", "600"])
    def term(signum, frame):
        ignore = int(rd("ignore_term", "0"))
        if ignore > 0:
            wr("ignore_term", str(ignore - 1))
            log("supervisor ignored SIGTERM")
            return
        child.terminate()
        child.wait()
        wr("state." + iface, "armed")
        for f in (P, p):
            os.unlink(f)
        log("supervisor exit")
        sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    # pidfile(3) writes the bare number, without a newline
    with open(p, "w") as f:
        f.write("%d" % child.pid)
    wr("state." + iface, "tunneled")
    with open(P, "w") as f:
        f.write("%d" % os.getpid())
    while True:
        signal.pause()


def main():
    me = os.path.basename(sys.argv[0])
    if len(sys.argv) > 1 and sys.argv[1] == "supervise":
        return supervise(*sys.argv[2:5])
    return {"ifconfig": ifconfig, "sysctl": sysctl, "emtunctl": emtunctl, "daemon": daemon}[me](
        [a for a in sys.argv[1:] if not (me == "sysctl" and a == "-n")])


if __name__ == "__main__":
    sys.exit(main())
