#!/bin/sh
# emtun VM harness, guest side (FreeBSD /bin/sh). The host driver (tests/vm/harness.py) types
# short commands "sh /tmp/e/g.sh SUBCOMMAND ARGS" on the serial console; every subcommand is
# bounded in time (timeout(1) or its own loop) and prints key=value lines the host parses.
E=/tmp/e
B=$E/bin
IF=${IF:-em0}
DUT_IP=198.18.0.1	# RFC 2544 benchmarking range; the wire is a QEMU socket netdev between our VMs
PEER_IP=198.18.0.2
PREFIX=24
SYS=dev.em.0.tunnel
PATH=$B:/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/bin
export PATH

kv() { echo "$1=$2"; }

has_tunnel_sysctl() { sysctl -n $SYS.state >/dev/null 2>&1; }

# init ROLE: address em0, offloads off (netmap's host path drops TX-offloaded mbufs)
init() {
	role=$1
	case $role in dut) ip=$DUT_IP;; peer) ip=$PEER_IP;; *) echo "bad role"; return 2;; esac
	ifconfig $IF inet $ip/$PREFIX up
	ifconfig $IF -txcsum -txcsum6 -tso -vlanhwtag -lro 2>/dev/null
	sysctl -q net.inet.icmp.icmplim=0 >/dev/null
	kv role "$role"
	kv ip "$ip"
	kv mac "$(ifconfig $IF ether | awk '/ether/{print $2}')"
	kv kernel "$(uname -v | awk '{print $1,$2,$3,$4}')"
	kv netmap "$(test -c /dev/netmap && echo yes || echo no)"
	kv tunnel_sysctl "$(has_tunnel_sysctl && echo yes || echo no)"
	kv options "$(ifconfig $IF | awk '/options=/{print $1}')"
	kv ncpu "$(sysctl -n hw.ncpu)"
}

# waitping HOST TIMEOUT_S: first reply within TIMEOUT_S (link/ARP settle)
waitping() {
	i=0
	while [ $i -lt "$2" ]; do
		ping -c 1 -t 1 "$1" >/dev/null 2>&1 && { kv waitping_s "$i"; return 0; }
		i=$((i + 1))
	done
	kv waitping_s timeout
	return 1
}

# pingstat HOST COUNT INTERVAL: loss and rtt
pingstat() {
	out=$(timeout $(( $2 + 30 )) ping -q -c "$2" -i "$3" "$1" 2>&1)
	rc=$?
	echo "$out" | awk '
		/packets transmitted/ { print "ping_tx=" $1; print "ping_rx=" $4; l=$7; sub("%","",l); print "ping_loss_pct=" l }
		/round-trip/ { split($4, a, "/"); print "rtt_min_ms=" a[1]; print "rtt_avg_ms=" a[2]; print "rtt_max_ms=" a[3]; print "rtt_stddev_ms=" a[4] }'
	kv ping_rc $rc
	return $rc
}

# bgping NAME HOST COUNT INTERVAL: ping in the background into /tmp/NAME.ping
bgping() {
	( timeout $(( $3 + 60 )) ping -c "$3" -i "$4" "$2" > /tmp/$1.ping 2>&1 ) >/dev/null 2>&1 &
	kv bgping_pid $!
}

# pingres NAME [WAIT_S]: summary of a background ping (waits up to WAIT_S, default 120 s)
pingres() {
	i=0
	while [ $i -lt $(( ${2:-120} * 2 )) ] && ! grep -q 'packets transmitted' /tmp/$1.ping 2>/dev/null; do
		sleep 0.5; i=$((i + 1))
	done
	awk '
		/packets transmitted/ { print "ping_tx=" $1; print "ping_rx=" $4; l=$7; sub("%","",l); print "ping_loss_pct=" l }
		/round-trip/ { split($4, a, "/"); print "rtt_avg_ms=" a[2]; print "rtt_max_ms=" a[3] }' /tmp/$1.ping
	# longest run of missing icmp_seq numbers = outage in packets; replies missing before the
	# last one answered (a ping ended by SIGINT may have one request still in flight after it)
	awk -F'icmp_seq=' '/icmp_seq=/{ split($2, a, " "); s=a[1]+0; if (!seen) first=s; if (seen && s-last-1 > gap) gap=s-last-1; last=s; seen=1
			if (!(s in got)) { got[s]=1; n++ }; if (s > hi) hi=s }
		END { print "ping_max_gap_pkts=" gap+0; if (seen) { print "ping_first_seq=" first; print "ping_last_seq=" hi;
			print "ping_lost_before_last=" hi + 1 - n } }' /tmp/$1.ping
}

# mkblob MB: random payload and its sha256
mkblob() {
	[ -f /tmp/blob ] && [ "$(stat -f %z /tmp/blob)" -eq $(( $1 * 1048576 )) ] || \
		dd if=/dev/random of=/tmp/blob bs=1m count="$1" 2>/dev/null
	sha256 -q /tmp/blob > /tmp/blob.sha
	kv blob_sha256 "$(cat /tmp/blob.sha)"
	kv blob_bytes "$(stat -f %z /tmp/blob)"
}

# rx PORT SECS: background TCP sink that hashes what it receives into /tmp/rx.PORT.sha
rx() {
	rm -f /tmp/rx.$1.sha /tmp/rx.$1.done
	( timeout "$2" nc -d -l "$1" | sha256 -q > /tmp/rx.$1.sha; touch /tmp/rx.$1.done ) >/dev/null 2>&1 &
	sleep 0.3
	kv rx_pid $!
}

# rxres PORT WAIT_S: the hash the sink computed (waits for it)
rxres() {
	i=0
	while [ $i -lt $(( $2 * 4 )) ] && [ ! -f /tmp/rx.$1.done ]; do sleep 0.25; i=$((i + 1)); done
	kv rx_done "$(test -f /tmp/rx.$1.done && echo yes || echo no)"
	kv rx_sha256 "$(cat /tmp/rx.$1.sha 2>/dev/null)"
}

# tx HOST PORT SECS: send /tmp/blob, report the wall time
tx() {
	/usr/bin/time -p -o /tmp/tx.time timeout "$3" nc -v -N "$1" "$2" < /tmp/blob
	rc=$?
	kv tx_rc $rc
	kv tx_s "$(awk '/^real/{print $2}' /tmp/tx.time)"
	kv tx_bytes "$(stat -f %z /tmp/blob)"
	return $rc
}

# bgtx NAME HOST PORT SECS: tx in the background, result in /tmp/NAME.tx
bgtx() {
	rm -f /tmp/$1.tx
	( sh $E/g.sh tx "$2" "$3" "$4" > /tmp/$1.tx.part 2>&1; mv /tmp/$1.tx.part /tmp/$1.tx ) >/dev/null 2>&1 &
	kv bgtx_pid $!
}

bgtxres() {
	i=0
	while [ $i -lt $(( $2 * 4 )) ] && [ ! -f /tmp/$1.tx ]; do sleep 0.25; i=$((i + 1)); done
	cat /tmp/$1.tx 2>/dev/null || kv tx_rc timeout
}

# tuncmd MODE: the tunnel command line. MODE: default (the binary's own: adaptive) | adaptive |
# busy | interval (1 ms poll).
# TUN=emtunctl|fwd chooses the binary (default: emtunctl run when it is there, else the fwd example).
tuncmd() {
	t=${TUN:-}
	[ -z "$t" ] && { [ -x $B/emtunctl ] && t=emtunctl || t=fwd; }
	if [ "$t" = emtunctl ]; then
		case ${1:-default} in busy) p=--busy;; interval) p="--interval 1ms";; adaptive) p="--poll adaptive";; *) p=;; esac
		echo "$B/emtunctl run $IF --claim 0x88b5 $p"
	else
		case ${1:-default} in busy) p=--busy;; interval) p="--interval-us 1000";; adaptive) p="--poll adaptive";; *) p=;; esac
		echo "$B/fwd $IF --claim 0x88b5 $p"
	fi
}

# tun NAME [MODE]: start a tunnel in the background; pid in /tmp/NAME.pid, output /tmp/NAME.log
tun() {
	name=$1
	cmd=$(tuncmd "${2:-default}")
	tunstart "$name" $cmd
}

# tunstart NAME CMD...: start any tunnel-owning command; waits until the kernel says tunneled
tunstart() {
	name=$1; shift
	rm -f /tmp/$name.pid /tmp/$name.log /tmp/$name.rc
	( "$@" > /tmp/$name.log 2>&1 & echo $! > /tmp/$name.pid; wait $!; echo $? > /tmp/$name.rc ) >/dev/null 2>&1 &
	i=0
	while [ $i -lt 40 ] && [ ! -s /tmp/$name.pid ]; do sleep 0.05; i=$((i + 1)); done
	kv cmd "$*"
	kv pid "$(cat /tmp/$name.pid)"
	i=0
	if has_tunnel_sysctl; then
		while [ $i -lt 100 ] && [ "$(sysctl -n $SYS.state)" != tunneled ]; do
			[ -f /tmp/$name.rc ] && break
			sleep 0.1; i=$((i + 1))
		done
		kv state "$(sysctl -n $SYS.state)"
		kv owner_pid "$(sysctl -n $SYS.owner_pid)"
	else
		sleep 3
		kv state "$(test -f /tmp/$name.rc && echo exited || echo running-stock-kernel)"
	fi
	kv start_wait_ds $i
	[ -f /tmp/$name.rc ] && { kv exited_rc "$(cat /tmp/$name.rc)"; sed 's/^/log: /' /tmp/$name.log | tail -20; return 1; }
	return 0
}

# bg NAME CMD...: run any command in the background (pid /tmp/NAME.pid, output /tmp/NAME.log,
# exit status /tmp/NAME.rc); tunwait NAME collects it
bg() {
	name=$1; shift
	rm -f /tmp/$name.pid /tmp/$name.log /tmp/$name.rc
	( "$@" > /tmp/$name.log 2>&1 & echo $! > /tmp/$name.pid; wait $!; echo $? > /tmp/$name.rc ) >/dev/null 2>&1 &
	sleep 0.2
	kv pid "$(cat /tmp/$name.pid 2>/dev/null)"
}

# tunwait NAME SECS: wait for exit, print rc and log
tunwait() {
	i=0
	while [ $i -lt $(( $2 * 10 )) ] && [ ! -f /tmp/$1.rc ]; do sleep 0.1; i=$((i + 1)); done
	kv exit_rc "$(cat /tmp/$1.rc 2>/dev/null || echo running)"
	kv wait_ds $i
	sed 's/^/log: /' /tmp/$1.log | tail -40
}

# tunstop NAME [SIG]: signal (TERM default), wait, print rc + log
tunstop() {
	pid=$(cat /tmp/$1.pid 2>/dev/null)
	[ -n "$pid" ] && kill -"${2:-TERM}" "$pid" 2>/dev/null
	tunwait "$1" 20
	if [ ! -f /tmp/$1.rc ] && [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; kv killed 9; fi
}

# kstate: the kernel's view (all dev.em.0.tunnel.* and the interface counters)
kstate() {
	if has_tunnel_sysctl; then
		sysctl $SYS | sed -e "s/^$SYS\.//" -e 's/: /=/' -e 's/^/k./'
	else
		kv k.state none
	fi
	netstat -I $IF -n -b | awk 'NR==2 { print "if.ipkts=" $5; print "if.ierrs=" $6; print "if.idrop=" $7; print "if.ibytes=" $8; print "if.opkts=" $9; print "if.oerrs=" $10; print "if.obytes=" $11 }'
}

# k NAME=VALUE...: sysctl writes under dev.em.0.tunnel (prints rc)
k() {
	for a in "$@"; do
		sysctl -q $SYS.$a >/dev/null 2>/tmp/k.err
		rc=$?
		kv "set.${a%%=*}.rc" $rc
		[ $rc = 0 ] || kv "set.${a%%=*}.err" "$(tr '\n' ' ' < /tmp/k.err)"
	done
}

# leaks: the kernel memory and interface counters the soak compares before/after
leaks() {
	vmstat -m | awk '$1 == "netmap" { print "vm_netmap_inuse=" $2; print "vm_netmap_memuse=" $3 }'
	kv mbuf_current "$(netstat -m | awk -F/ '/mbufs in use/{print $1}')"
	kv clusters_current "$(netstat -m | awk -F/ '/mbuf clusters in use/{print $1}')"
	kv fds "$(fstat 2>/dev/null | wc -l | tr -d ' ')"
	kv netmap_fds "$(fstat 2>/dev/null | grep -c netmap)"
}

# ctl ARGS...: run emtunctl, show rc and output (JSON goes to /tmp/ctl.out)
ctl() {
	timeout 20 $B/emtunctl "$@" > /tmp/ctl.out 2>/tmp/ctl.err
	rc=$?
	kv ctl_rc $rc
	sed 's/^/out: /' /tmp/ctl.out
	sed 's/^/err: /' /tmp/ctl.err
	return $rc
}

# --- service (emtun(8) rc.d script, devd rules; scenario "service") ------------------------
SVC_PID=/var/run/emtun_$IF.pid
SVC_CHILD=/var/run/emtun_$IF.child.pid
SVC_OFF=/var/run/emtun_$IF.offloads

# svccheck: which of the service's emtunctl/pingpong options this build has (clap refuses an
# unknown option with exit 2 before it looks at --help)
svccheck() {
	for o in "reattach:run $IF --reattach --max-retries 3" "poll:run $IF --poll interval:1ms" \
	    "prom:stats $IF --format prometheus"; do
		# shellcheck disable=SC2086
		if $B/emtunctl ${o#*:} --help >/dev/null 2>/tmp/svccheck.err; then
			kv "svc_${o%%:*}" yes
		else
			kv "svc_${o%%:*}" no
			kv "svc_${o%%:*}_err" "$(grep -m1 -i error /tmp/svccheck.err | tr -d '\r')"
		fi
	done
	if [ -x $B/pingpong ] && $B/pingpong em0 --role server --reattach --help >/dev/null 2>&1; then
		kv pp_reattach yes
	else
		kv pp_reattach no
	fi
}

# svcinstall: what make install does, from the data disk: binaries, the rc.d script (PREFIX
# substituted), the devd rules; devd rereads its configuration
svcinstall() {
	set -e
	mkdir -p /usr/local/sbin /usr/local/bin /usr/local/etc/rc.d /usr/local/etc/devd
	install -m 555 $B/emtunctl /usr/local/sbin/emtunctl
	[ -x $B/fwd ] && install -m 555 $B/fwd /usr/local/bin/emtun-fwd
	[ -x $B/pingpong ] && install -m 555 $B/pingpong /usr/local/bin/emtun-pingpong
	sed -e 's,%%PREFIX%%,/usr/local,g' $E/pkg/emtun.in > /usr/local/etc/rc.d/emtun
	chmod 555 /usr/local/etc/rc.d/emtun
	install -m 444 $E/pkg/emtun.conf /usr/local/etc/devd/emtun.conf
	set +e
	service devd restart >/dev/null 2>&1
	kv svcinstall ok
	kv rcvar "$(service emtun rcvar 2>/dev/null | grep -c emtun_enable)"
}

# svcconf VAR=VALUE...: rc.conf through sysrc(8)
svcconf() {
	for a in "$@"; do
		# an image without a working sysrc(8) (it needs bsdconfig's
		# libraries): the same edit of /etc/rc.conf by hand
		sysrc "$a" >/dev/null 2>&1 || {
			n=${a%%=*}
			{ grep -v "^$n=" /etc/rc.conf; printf '%s="%s"\n' "$n" "${a#*=}"; } >/etc/rc.conf.new \
				&& mv /etc/rc.conf.new /etc/rc.conf
		}
		kv "sysrc.${a%%=*}.rc" $?
	done
}

# opts: the enabled capabilities of the interface, as ifconfig prints them
opts() {
	ifconfig $IF | sed -n 's/^[[:space:]]*options=[0-9a-f]*<\(.*\)>.*$/\1/p'
}

# svcstate: the kernel's and the service's view
svcstate() {
	kv state "$(sysctl -n $SYS.state 2>/dev/null)"
	kv owner_pid "$(sysctl -n $SYS.owner_pid 2>/dev/null)"
	kv watchdog_us "$(sysctl -n $SYS.watchdog_us 2>/dev/null)"
	kv daemon_pid "$(cat $SVC_PID 2>/dev/null)"
	kv child_pid "$(cat $SVC_CHILD 2>/dev/null)"
	kv offloads_file "$(cat $SVC_OFF 2>/dev/null | tr ' ' ,)"
	kv options "$(opts)"
	kv boottime "$(sysctl -n kern.boottime | sed -n 's/^{ sec = \([0-9]*\),.*/\1/p')"
}

# svcwait STATE SECS [OLD_PID]: wait until the state is STATE and, for tunneled, the owner is
# the service's child (and not OLD_PID); then the wall clock in ns
svcwait() {
	i=0
	while [ $i -lt $(( $2 * 20 )) ]; do
		st=$(sysctl -n $SYS.state 2>/dev/null)
		op=$(sysctl -n $SYS.owner_pid 2>/dev/null)
		cp=$(cat $SVC_CHILD 2>/dev/null)
		if [ "$st" = "$1" ]; then
			[ "$1" != tunneled ] && break
			[ "$op" = "$cp" ] && [ "$op" != "${3:-}" ] && break
		fi
		sleep 0.05; i=$((i + 1))
	done
	kv wait_wall_ns "$($B/probe now | sed 's/[^0-9]//g')"
	kv wait_ds $((i / 2))
	kv state "$st"
	kv owner_pid "$op"
	kv child_pid "$cp"
	[ "$st" = "$1" ]
}

# svc ARGS...: service emtun ARGS, output as out: lines
svc() {
	# --foreground: without it timeout(1) reaps and waits for every descendant,
	# daemon(8) and the tunnel included, and kills them after 120 s
	timeout --foreground 120 service emtun "$@" > /tmp/svc.out 2>&1
	rc=$?
	kv svc_rc $rc
	sed 's/^/out: /' /tmp/svc.out
	return $rc
}

# svclog: the emtun lines of /var/log/messages (devd events, the tunnel's own output)
svclog() {
	grep ' emtun' /var/log/messages | sed 's/^/log: /' | tail -${1:-60}
	# syslogd(8) writes logger(1)'s tag as "emtun[PID]:"
	kv devd_register "$(grep -Ec 'emtun(\[[0-9]+\])?: em0: tunnel state=tunneled reason=register' /var/log/messages)"
	kv devd_revoke "$(grep -Ec 'emtun(\[[0-9]+\])?: em0: tunnel state=revoked reason=' /var/log/messages)"
	kv devd_revoke_watchdog "$(grep -Ec 'emtun(\[[0-9]+\])?: em0: tunnel state=revoked reason=watchdog' /var/log/messages)"
	kv devd_close "$(grep -Ec 'emtun(\[[0-9]+\])?: em0: tunnel state=[a-z]+ reason=close' /var/log/messages)"
}

# prom: emtunctl stats in the Prometheus format, between markers for the host's parser
prom() {
	echo "@@PROM-BEGIN@@"
	$B/emtunctl stats $IF --format prometheus
	rc=$?
	echo "@@PROM-END@@"
	kv prom_rc $rc
}

# cputime PID: the CPU seconds (user + system) the process has used so far
cputime() {
	ps -o time= -p "$1" 2>/dev/null | awk -F: '{ n = NF; s = $n; m = (n > 1) ? $(n - 1) : 0; h = (n > 2) ? $(n - 2) : 0; printf "cpu_s=%.2f\n", h * 3600 + m * 60 + s }'
}

# waitstate STATE SECS: poll dev.em.0.tunnel.state every 10 ms; prints the wait in ms
waitstate() {
	i=0
	while [ $i -lt $(( $2 * 100 )) ] && [ "$(sysctl -n $SYS.state)" != "$1" ]; do
		sleep 0.01; i=$((i + 1))
	done
	kv waitstate_ms $(( i * 10 ))
	[ "$(sysctl -n $SYS.state)" = "$1" ]
}

# cycles NAME "KIND..." N RUN_WD_US SETTLE_S: N tunnels (named NAME) that run SETTLE_S seconds,
# then end by the KINDs in turn: kill9, stop (SIGSTOP; a ping is the work that lets a 10 ms
# watchdog revoke it; SIGCONT), admin (revoke), adminterm (revoke, then SIGTERM), term.
# Each cycle must end in state armed with ping working. Prints
# NAME.I=KIND,rc=RC,armed=0|1,ping=0|1,mbufs=M/C per cycle, then NAME_ok and NAME_bad.
# mixsoak: cycles soak "kill9 stop admin term" N WD 0.2; F7: cycles stop "kill9 term adminterm" N WD 1.
# (Own variable names: tun, tunstart and waitstate use i and j.)
cycles() {
	cy_name=$1; cy_kinds=$2; cy_n=$3; cy_wd=${4:-2000000}; cy_settle=${5:-0.2}
	cy_nk=$(echo $cy_kinds | wc -w); cy_ok=0; cy_bad=0; cy_i=0
	while [ $cy_i -lt "$cy_n" ]; do
		cy_k=$(echo $cy_kinds | cut -d' ' -f$(( cy_i % cy_nk + 1 )))
		sysctl -q $SYS.watchdog_us="$cy_wd" >/dev/null
		if ! tun "$cy_name" default >/tmp/"$cy_name".start 2>&1; then
			kv "$cy_name.$cy_i" "$cy_k,start_failed"; cy_bad=$((cy_bad + 1)); cy_i=$((cy_i + 1)); continue
		fi
		cy_pid=$(cat /tmp/"$cy_name".pid)
		sleep "$cy_settle"
		case $cy_k in
		kill9) kill -9 "$cy_pid";;
		stop) sysctl -q $SYS.watchdog_us=10000 >/dev/null; kill -STOP "$cy_pid"
			ping -c 2 -i 0.1 -t 2 $PEER_IP >/dev/null 2>&1 &
			waitstate revoked 10 >/dev/null; kill -CONT "$cy_pid";;
		admin) sysctl -q $SYS.revoke=1 >/dev/null;;
		adminterm) sysctl -q $SYS.revoke=1 >/dev/null; sleep 0.2; kill -TERM "$cy_pid" 2>/dev/null;;
		term) kill -TERM "$cy_pid";;
		esac
		cy_w=0
		while [ $cy_w -lt 200 ] && [ ! -f /tmp/"$cy_name".rc ]; do sleep 0.05; cy_w=$((cy_w + 1)); done
		cy_rc=$(cat /tmp/"$cy_name".rc 2>/dev/null || echo running)
		[ "$cy_rc" = running ] && kill -9 "$cy_pid" 2>/dev/null
		cy_a=0; waitstate armed 10 >/dev/null && cy_a=1
		cy_p=0; ping -c 3 -i 0.2 -o -t 5 $PEER_IP >/dev/null 2>&1 && cy_p=1
		cy_mb=$(netstat -m | awk -F/ '/mbufs in use/ { m=$1 } /mbuf clusters in use/ { c=$1 } END { print m "/" c }')
		kv "$cy_name.$cy_i" "$cy_k,rc=$cy_rc,armed=$cy_a,ping=$cy_p,mbufs=$cy_mb"
		if [ $cy_a = 1 ] && [ $cy_p = 1 ] && [ "$cy_rc" != running ]; then
			cy_ok=$((cy_ok + 1))
		else
			cy_bad=$((cy_bad + 1))
		fi
		cy_i=$((cy_i + 1))
	done
	kv "${cy_name}_ok" $cy_ok
	kv "${cy_name}_bad" $cy_bad
}

# --- field cases (issue 13; tests/vm/field.py) ----------------------------------------------

# pingsum: loss and rtt of a ping's output on stdin
pingsum() {
	awk '
		/packets transmitted/ { print "ping_tx=" $1; print "ping_rx=" $4; l=$7; sub("%","",l); print "ping_loss_pct=" l }
		/round-trip/ { split($4, a, "/"); print "rtt_min_ms=" a[1]; print "rtt_avg_ms=" a[2]; print "rtt_max_ms=" a[3] }'
}

# pingsz HOST COUNT SIZE: COUNT pings of SIZE payload bytes with DF set (-D), 0.1 s apart
pingsz() {
	timeout $(( $2 + 30 )) ping -q -D -c "$2" -i 0.1 -s "$3" "$1" > /tmp/pingsz.out 2>&1
	rc=$?
	pingsum < /tmp/pingsz.out
	kv ping_rc $rc
	return 0
}

# flood HOST COUNT SIZE SECS: ping -f (ended by SIGINT after SECS, so the summary is printed)
flood() {
	timeout -s INT "$4" ping -q -f -c "$2" -s "$3" "$1" > /tmp/flood.out 2>&1
	rc=$?
	pingsum < /tmp/flood.out
	kv ping_rc $rc
	return 0
}

# bgflood NAME HOST COUNT SIZE: ping -f in the background into /tmp/NAME.ping (pingres reads
# it); end it with pkill -INT -x ping
bgflood() {
	( timeout -s INT 3600 ping -q -f -c "$3" -s "$4" "$2" > /tmp/$1.ping 2>&1 ) >/dev/null 2>&1 &
	kv bgflood_pid $!
}

# pingseq HOST COUNT INTERVAL: which echo requests were answered (icmp_seq list)
pingseq() {
	timeout $(( $2 + 30 )) ping -c "$2" -i "$3" "$1" > /tmp/pingseq.out 2>&1
	kv ping_rc $?
	kv ping_seqs "$(awk -F'icmp_seq=' '/icmp_seq=/{ split($2, a, " "); printf "%s%d", (n++ ? "," : ""), a[1] }' /tmp/pingseq.out)"
	pingsum < /tmp/pingseq.out
}

# pingafter HOST COUNT INTERVAL: end the background pings (SIGINT: their summaries are written),
# then pingseq at once
pingafter() {
	pkill -INT -x ping
	sleep 0.1
	pingseq "$@"
}

# udpblast COUNT [PID SECS]: COUNT small kernel UDP datagrams as fast as the probe sends them,
# to 239.1.2.5:5005 out of em0 (multicast: no listener needed, so no ICMP error stops the sender;
# send errors are not counted as sent). With PID: that process (the tunnel) is stopped for SECS,
# from 0.2 s into the blast, so that the host queue overflows.
udpblast() {
	t0=$(date +%s)
	timeout 120 /tmp/e/bin/probe mcast-send 239.1.2.5:5005 $DUT_IP "$1" 0 > /tmp/udpblast.out 2>&1 &
	ub=$!
	if [ -n "${2:-}" ]; then
		sleep 0.2; kill -STOP "$2"; sleep "$3"; kill -CONT "$2"
	fi
	wait $ub
	kv udp_rc $?
	kv udp_s $(( $(date +%s) - t0 ))
	kv udp_sent "$(sed -n 's/.*"sent":\([0-9]*\).*/\1/p' /tmp/udpblast.out)"
}

# pktgen COUNT RATE LEN SECS: netmap's pkt-gen floods em0 (-f tx; its default broadcast UDP frames)
pktgen() {
	pg=$(command -v pkt-gen)
	[ -n "$pg" ] || { kv pktgen_rc missing; return 127; }
	kv pktgen_path "$pg"
	timeout "$4" "$pg" -i $IF -f tx -n "$1" -R "$2" -l "$3" > /tmp/pktgen.log 2>&1
	rc=$?
	kv pktgen_rc $rc
	awk '/^Sent [0-9]+ packets/ { print "pktgen_sent=" $2; print "pktgen_secs=" $(NF-1) }
		/^Speed:/ { print "pktgen_speed=" $2 $3 }' /tmp/pktgen.log
	sed 's/^/log: /' /tmp/pktgen.log | tail -8
	return $rc
}

# ipstat: netstat -s -p ip as ip.<words>=N
ipstat() {
	netstat -s -p ip | awk '$1 ~ /^[0-9]+$/ { n=$1; $1=""; k=$0; gsub(/[^A-Za-z0-9]+/, "_", k); gsub(/^_|_$/, "", k); print "ip." k "=" n }'
}

# nicstat: the NIC's counters (em mac_stats, driver drops) and ipstat
nicstat() {
	sysctl dev.em.0.mac_stats dev.em.0.dropped dev.em.0.rx_overruns 2>/dev/null | \
		sed -e 's/^dev\.em\.0\.//' -e 's/^mac_stats\.//' -e 's/: /=/' -e 's/^/nic./'
	ipstat
}

# nmparams: the netmap sysctls the field cases change
nmparams() {
	for s in admode buf_size buf_num buf_curr_size buf_curr_num; do
		kv $s "$(sysctl -n dev.netmap.$s 2>/dev/null)"
	done
}

# ifstate: em0's flags, mtu and options, the tunnel state and owner
ifstate() {
	l=$(ifconfig $IF | head -1)
	kv flags "$(echo "$l" | sed -n 's/.*flags=[0-9a-f]*<\([^>]*\)>.*/\1/p')"
	kv mtu "$(echo "$l" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
	kv options "$(opts)"
	kv state "$(sysctl -n $SYS.state 2>/dev/null)"
	kv owner_pid "$(sysctl -n $SYS.owner_pid 2>/dev/null)"
}

# ifc ARGS...: ifconfig ARGS with its exit status and message (a refusal is a result)
ifc() {
	ifconfig "$@" > /tmp/ifc.out 2>&1
	kv ifc_rc $?
	kv ifc_err "$(tr '\n' ' ' < /tmp/ifc.out)"
}

# waitnot STATE SECS: poll every 10 ms until the tunnel state is no longer STATE
waitnot() {
	i=0
	while [ $i -lt $(( $2 * 100 )) ] && [ "$(sysctl -n $SYS.state)" = "$1" ]; do
		sleep 0.01; i=$((i + 1))
	done
	kv waitnot_ms $(( i * 10 ))
	kv state "$(sysctl -n $SYS.state)"
}

# dmark NAME: a copy of the kernel message buffer (dnew NAME prints what came after it)
dmark() {
	dmesg -a > /tmp/dm.$1
	kv dm_mark_lines "$(wc -l < /tmp/dm.$1 | tr -d ' ')"
}

# dnew NAME [TAIL]: kernel messages since dmark NAME (the buffer is a ring: a line is new when the
# copy had fewer of it), counts of the lines the field cases look for, and the last TAIL lines
dnew() {
	[ -f /tmp/dm.$1 ] || : > /tmp/dm.$1
	dmesg -a > /tmp/dm.now
	awk 'FILENAME == ARGV[1] { c[$0]++; next } c[$0] > 0 { c[$0]--; next } { print }' /tmp/dm.$1 /tmp/dm.now > /tmp/dm.new
	kv dm_new "$(wc -l < /tmp/dm.new | tr -d ' ')"
	kv dm_ring "$(grep -c -e "fail 'head'" -e netmap_ring_reinit -e 'bad buf_idx' /tmp/dm.new)"
	kv dm_witness "$(grep -i -e 'lock order reversal' -e 'witness_' -e 'sleeping thread' -e 'sleeping with' -e 'panic' /tmp/dm.new | grep -vc 'expect reduced performance')"
	kv dm_refused_mtu "$(grep -c 'refused while tunneled' /tmp/dm.new)"
	kv dm_reconfig "$(grep -c 'reconfigured while tunneled' /tmp/dm.new)"
	kv dm_reconfig_revoke "$(grep -c 'reconfig revoke of pid' /tmp/dm.new)"
	kv dm_linkdown "$(grep -c "$IF: link state changed to DOWN" /tmp/dm.new)"
	sed 's/^/dmesg: /' /tmp/dm.new | tail -"${2:-40}"
}

cmd=$1; shift
"$cmd" "$@"
