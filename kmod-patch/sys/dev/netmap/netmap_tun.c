/*-
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Copyright (c) 2026 The emtun project
 *
 * Redistribution and use in source and binary forms, with or without
 * modification, are permitted provided that the following conditions
 * are met:
 * 1. Redistributions of source code must retain the above copyright
 *    notice, this list of conditions and the following disclaimer.
 * 2. Redistributions in binary form must reproduce the above copyright
 *    notice, this list of conditions and the following disclaimer in the
 *    documentation and/or other materials provided with the distribution.
 *
 * THIS SOFTWARE IS PROVIDED BY THE AUTHOR AND CONTRIBUTORS ``AS IS'' AND
 * ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
 * IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
 * ARE DISCLAIMED.  IN NO EVENT SHALL THE AUTHOR OR CONTRIBUTORS BE LIABLE
 * FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
 * DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS
 * OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION)
 * HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT
 * LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY
 * OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF
 * SUCH DAMAGE.
 */

/*
 * netmap_tun: the kernel agent of tunneled mode (see netmap_tun(4)).
 *
 * Per NIC, the agent keeps the arming state, the owner of the tunnel, a
 * watchdog on the work that waits for the owner, counters, and the
 * dev.<driver>.<unit>.tunnel sysctl tree.  Every nm_register() of an armed
 * NIC goes through netmap_tun_switch(): the driver restarts only its queues.
 *
 * Locking.  The lock order is
 *	NMG_LOCK (sx) -> driver CTX lock (sx) -> nt_mtx (mutex, leaf).
 * - Every state change (arm, disarm, enter, leave, revoke, detach) runs with
 *   NMG_LOCK held and writes the fields under nt_mtx as well, so that the
 *   callout (which holds only nt_mtx) sees a consistent state.
 * - nm_register() (which takes the CTX lock) runs under NMG_LOCK only: from
 *   the netmap core, the sysctl handlers, the fd destructor, detach, or the
 *   dedicated taskqueue for the watchdog.  Never under the CTX lock; the
 *   callout never sleeps nor takes NMG_LOCK: it only enqueues the task.
 * - The callout and the task are drained in netmap_tun_detach() without any
 *   lock held (the task takes NMG_LOCK).
 * - The driver's hooks for a reconfiguration (netmap_tun_mtu(),
 *   netmap_tun_reinit()) run under the CTX lock, so they take nt_mtx only:
 *   a revoke they need runs on the taskqueue.
 * - During a switch, netmap_tun_hold() is the interface's transmit routine:
 *   it runs in the stack's context and takes nt_mtx only.  The frames it
 *   held are sent under NMG_LOCK, in the network epoch, without nt_mtx.
 * Field annotations: (c) constant after attach, (g) NMG_LOCK, (m) nt_mtx,
 * (g+m) written with both held, read with either held; lock-free fields
 * carry their atomic(9) rule.
 */

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/bus.h>
#include <sys/callout.h>
#include <sys/counter.h>
#include <sys/devctl.h>
#include <sys/epoch.h>
#include <sys/kernel.h>
#include <sys/lock.h>
#include <sys/malloc.h>
#include <sys/mutex.h>
#include <sys/poll.h>
#include <sys/proc.h>
#include <sys/rwlock.h>
#include <sys/selinfo.h>
#include <sys/socket.h>
#include <sys/sx.h>
#include <sys/sysctl.h>
#include <sys/taskqueue.h>

#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_var.h>
#include <machine/bus.h>

#include <net/netmap.h>
#include <dev/netmap/netmap_kern.h>
#include <dev/netmap/netmap_tun.h>

static MALLOC_DEFINE(M_NETMAP_TUN, "netmap_tun", "netmap tunneled mode");

/* Interface capabilities that must be off on a tunneled NIC. */
#define	NT_BAD_CAPS	(IFCAP_TXCSUM | IFCAP_TXCSUM_IPV6 | IFCAP_TSO4 | \
			    IFCAP_TSO6 | IFCAP_VLAN_HWTAGGING)

#define	NT_WATCHDOG_MIN_US	1000
#define	NT_WATCHDOG_MAX_US	10000000
#define	NT_WATCHDOG_DFLT_US	10000
/* Host stack frames held during one mode switch, at most (host_drop). */
#define	NT_HOLD_MAX		4096
/* The watchdog's first look after entry is at least this late. */
#define	NT_GRACE		(100 * SBT_1MS)

enum nt_phase {
	NT_IDLE,		/* not tunneled: "default" or "armed" */
	NT_TUNNELED,		/* "tunneled" */
	NT_REVOKED,		/* "revoked", the owner's fd is still bound */
};

enum nt_reason {
	NT_REASON_REGISTER,
	NT_REASON_CLOSE,
	NT_REASON_WATCHDOG,
	NT_REASON_ADMIN,
	NT_REASON_DETACH,
	NT_REASON_RECONFIG,
	NT_REASON_REFUSED_MTU,
};

static const char *nt_reason_names[] = {
	[NT_REASON_REGISTER] = "register",
	[NT_REASON_CLOSE] = "close",
	[NT_REASON_WATCHDOG] = "watchdog",
	[NT_REASON_ADMIN] = "admin",
	[NT_REASON_DETACH] = "detach",
	[NT_REASON_RECONFIG] = "reconfig",
	[NT_REASON_REFUSED_MTU] = "refused_mtu",
};

/*
 * The largest frame a netmap buffer must hold at this MTU: the Ethernet
 * header and one VLAN tag (the NIC strips the CRC).
 */
#define	NT_FRAME(mtu)	((mtu) + ETHER_HDR_LEN + ETHER_VLAN_ENCAP_LEN)

/*
 * The largest frame a tunnel carries: one netmap buffer and one NIC
 * receive buffer (a larger frame arrives as an NS_MOREFRAG chain, and the
 * host rings carry none: netmap_grab_packets() makes an mbuf of each slot,
 * netmap_transmit() drops what does not fit one buffer).
 */
static u_int
netmap_tun_max_frame(struct netmap_adapter *na)
{
	u_int max = NETMAP_BUF_SIZE(na);

	if (na->rx_buf_maxsize != 0 && na->rx_buf_maxsize < max)
		max = na->rx_buf_maxsize;
	return (max);
}

enum nt_stat {
	NT_STAT_ENTER,
	NT_STAT_EXIT,
	NT_STAT_REVOKE_WATCHDOG,
	NT_STAT_REVOKE_ADMIN,
	NT_STAT_HOST_IN,
	NT_STAT_HOST_OUT,
	NT_STAT_HOST_DROP,
	NT_STAT_FULL_RESET,
	NT_STAT_SLEEP,
	NT_NSTATS
};

static const struct {
	const char	*name;
	const char	*descr;
} nt_stat_desc[NT_NSTATS] = {
	[NT_STAT_ENTER] = { "enter", "Entries into tunneled mode" },
	[NT_STAT_EXIT] = { "exit", "Exits from tunneled mode (any cause)" },
	[NT_STAT_REVOKE_WATCHDOG] = { "revoke_watchdog",
	    "Registrations revoked by the watchdog" },
	[NT_STAT_REVOKE_ADMIN] = { "revoke_admin",
	    "Registrations revoked by the administrator" },
	[NT_STAT_HOST_IN] = { "host_in",
	    "Frames passed from the tunnel to the host stack" },
	[NT_STAT_HOST_OUT] = { "host_out",
	    "Frames queued from the host stack to the tunnel" },
	[NT_STAT_HOST_DROP] = { "host_drop",
	    "Host stack frames dropped (queue full, offload, revoke)" },
	[NT_STAT_FULL_RESET] = { "full_reset",
	    "Mode switches that fell back to a full NIC reset" },
	[NT_STAT_SLEEP] = { "sleeps",
	    "Times the owner slept in poll(2) with the RX interrupts unmasked" },
};

struct netmap_tun {
	struct mtx		nt_mtx;		/* leaf lock, see above */
	if_t			nt_ifp;		/* (c) */
	device_t		nt_dev;		/* (c) */
	struct netmap_tun_drv	*nt_drv;	/* (c) in the driver softc */
	struct netmap_adapter	*nt_na;		/* (g+m) NULL once detached */
	struct netmap_priv_d	*nt_priv;	/* (g) the owner's binding */
	bool			nt_armed;	/* (g+m) enable sysctl */
	bool			nt_dying;	/* (g+m) detach in progress */
	bool			nt_forced;	/* (g) we set NAF_FORCE_NATIVE */
	enum nt_phase		nt_phase;	/* (g+m) */
	pid_t			nt_pid;		/* (g+m) owner, 0 if none */
	u_int			nt_gen;		/* (g+m) bumped on changes */
	u_int			nt_task_gen;	/* (m) nt_gen the task is for */
	enum nt_reason		nt_task_reason;	/* (m) watchdog or reconfig */
	u_int			nt_watchdog_us;	/* (g+m) 0 = off */
	sbintime_t		nt_work_since;	/* (m) work seen unserved, or 0 */
	sbintime_t		nt_max_wait;	/* (m) longest such wait seen */
	struct callout		nt_callout;	/* (m) watchdog, on nt_mtx */
	struct task		nt_task;	/* revoke, on netmap_tun_tq */
	struct mbufq		nt_hold;	/* (m) held during a switch */
	bool			nt_holding;	/* (m) netmap_tun_hold() holds */
	counter_u64_t		nt_stats[NT_NSTATS];	/* (c) pointers */
	struct sysctl_ctx_list	nt_sysctl;	/* (c) own ctx, freed first */
};

/* Watchdog revokes sleep (NIC switch): they run on this taskqueue. */
static struct taskqueue *netmap_tun_tq;

static void
netmap_tun_tq_init(void *arg __unused)
{

	netmap_tun_tq = taskqueue_create("netmap_tun", M_WAITOK,
	    taskqueue_thread_enqueue, &netmap_tun_tq);
	taskqueue_start_threads(&netmap_tun_tq, 1, PI_NET, "netmap_tun");
}
SYSINIT(netmap_tun, SI_SUB_DRIVERS, SI_ORDER_FIRST, netmap_tun_tq_init, NULL);

static void
netmap_tun_tq_fini(void *arg __unused)
{

	if (netmap_tun_tq != NULL)
		taskqueue_free(netmap_tun_tq);
}
SYSUNINIT(netmap_tun, SI_SUB_DRIVERS, SI_ORDER_FIRST, netmap_tun_tq_fini,
    NULL);

static const char *
netmap_tun_state_locked(struct netmap_tun *tun)
{

	switch (tun->nt_phase) {
	case NT_TUNNELED:
		return ("tunneled");
	case NT_REVOKED:
		return ("revoked");
	default:
		return (tun->nt_armed ? "armed" : "default");
	}
}

/*
 * Set the driver's queue interrupt mode (NTD_Q_*).  Under nt_mtx, so that
 * an owner's wakeup in netmap_tun_wake() never undoes a revoke's
 * NTD_Q_OFF.
 */
static void
netmap_tun_qmode_locked(struct netmap_tun *tun, u_int mode)
{

	mtx_assert(&tun->nt_mtx, MA_OWNED);
	atomic_store_rel_int(&tun->nt_drv->ntd_qmask, mode);
	if (tun->nt_na != NULL)
		atomic_store_rel_int(&tun->nt_na->na_tun_asleep,
		    mode == NTD_Q_ASLEEP ? 1 : 0);
}

static void
netmap_tun_qmode(struct netmap_tun *tun, u_int mode)
{

	mtx_lock(&tun->nt_mtx);
	netmap_tun_qmode_locked(tun, mode);
	mtx_unlock(&tun->nt_mtx);
}

/* Announce a state change through devctl(4).  Called without nt_mtx. */
static void
netmap_tun_notify(struct netmap_tun *tun, const char *state,
    enum nt_reason reason, pid_t pid)
{
	char data[80];

	snprintf(data, sizeof(data), "state=%s reason=%s pid=%d", state,
	    nt_reason_names[reason], (int)pid);
	devctl_notify("ETHERNET", if_name(tun->nt_ifp), "TUNNEL", data);
}

/*
 * The host stack's transmit routine during a mode switch of an armed NIC.
 * While nm_register() stops and restarts the NIC, iflib would drop what
 * the stack sends (ENETDOWN: the interface is not running), and on the
 * way out the host RX queue would be purged with what it still holds for
 * a departed owner.  Instead the frames wait in nt_hold, in order, and
 * netmap_tun_release() hands them to the transmit routine in place after
 * the switch: the driver's, or netmap_transmit() for the new owner.  A
 * caller that loaded this routine just before the switch ended finds
 * nt_holding false and goes straight on.  Beyond NT_HOLD_MAX frames:
 * dropped, counted in host_drop.
 */
static int
netmap_tun_hold(if_t ifp, struct mbuf *m)
{
	struct netmap_tun *tun = NA(ifp)->na_tun;
	int error;

	mtx_lock(&tun->nt_mtx);
	if (!tun->nt_holding) {
		mtx_unlock(&tun->nt_mtx);
		return (if_gettransmitfn(ifp)(ifp, m));
	}
	error = mbufq_enqueue(&tun->nt_hold, m);
	mtx_unlock(&tun->nt_mtx);
	if (error != 0) {
		counter_u64_add(tun->nt_stats[NT_STAT_HOST_DROP], 1);
		m_freem(m);
	}
	return (error);
}

/*
 * Install netmap_tun_hold() for a switch: as the interface's routine and,
 * when netmap is on, as the one nm_os_onexit() restores.  On the way out
 * (the last user leaves) the host RX queues go first into nt_hold.
 * Returns the driver's transmit routine.  NMG_LOCK held.
 */
static if_transmit_fn_t
netmap_tun_hold_start(struct netmap_tun *tun, struct netmap_adapter *na,
    int onoff)
{
	struct netmap_kring *kring;
	if_transmit_fn_t drv_tx;
	struct mbuf *m;
	u_int i;

	mtx_lock(&tun->nt_mtx);
	tun->nt_holding = true;
	if (!nm_netmap_on(na)) {
		mtx_unlock(&tun->nt_mtx);
		drv_tx = if_gettransmitfn(tun->nt_ifp);
		if_settransmitfn(tun->nt_ifp, netmap_tun_hold);
		return (drv_tx);
	}
	drv_tx = na->if_transmit;
	na->if_transmit = netmap_tun_hold;
	if_settransmitfn(tun->nt_ifp, netmap_tun_hold);
	for (i = nma_get_nrings(na, NR_RX);
	    !onoff && na->active_fds <= 0 && i < netmap_real_rings(na, NR_RX);
	    i++) {
		kring = NMR(na, NR_RX)[i];
		mbq_lock(&kring->rx_queue);
		while ((m = mbq_dequeue(&kring->rx_queue)) != NULL) {
			if (mbufq_enqueue(&tun->nt_hold, m) != 0) {
				counter_u64_add(
				    tun->nt_stats[NT_STAT_HOST_DROP], 1);
				m_freem(m);
			}
		}
		mbq_unlock(&kring->rx_queue);
	}
	mtx_unlock(&tun->nt_mtx);
	return (drv_tx);
}

/*
 * End the hold: the routines netmap's mode calls for, then the frames
 * held, in order.  What the routine refuses was freed by it and is
 * counted in host_drop.  NMG_LOCK held.
 */
static void
netmap_tun_release(struct netmap_tun *tun, struct netmap_adapter *na,
    if_transmit_fn_t drv_tx)
{
	struct epoch_tracker et;
	if_transmit_fn_t tx;
	struct mbuf *m, *next;

	na->if_transmit = drv_tx;
	tx = nm_netmap_on(na) ? netmap_transmit : drv_tx;
	if_settransmitfn(tun->nt_ifp, tx);
	mtx_lock(&tun->nt_mtx);
	tun->nt_holding = false;
	m = mbufq_flush(&tun->nt_hold);
	mtx_unlock(&tun->nt_mtx);
	NET_EPOCH_ENTER(et);
	for (; m != NULL; m = next) {
		next = m->m_nextpkt;
		m->m_nextpkt = NULL;
		if (tx(tun->nt_ifp, m) != 0)
			counter_u64_add(tun->nt_stats[NT_STAT_HOST_DROP], 1);
	}
	NET_EPOCH_EXIT(et);
}

/*
 * nm_register() of the NIC.  If it is armed, the driver's stop routine,
 * called from nm_register() in this very thread, finds
 * netmap_tun_qrestart() true and restarts only the queues.  A driver that
 * could not stop its queues did a full reset: count it and say so.  The
 * host stack's frames wait for the end of the switch (netmap_tun_hold()).
 * NMG_LOCK held, no driver lock.
 */
static int
netmap_tun_switch(struct netmap_tun *tun, struct netmap_adapter *na,
    int onoff)
{
	struct netmap_tun_drv *drv = tun->nt_drv;
	if_transmit_fn_t drv_tx;
	char data[48];
	int error;

	NMG_LOCK_ASSERT();
	if (!tun->nt_armed)
		return (na->nm_register(na, onoff));	/* stock */
	drv->ntd_full_reset = NULL;
	drv_tx = netmap_tun_hold_start(tun, na, onoff);
	atomic_store_ptr(&drv->ntd_switch_td, curthread);
	error = na->nm_register(na, onoff);
	atomic_store_ptr(&drv->ntd_switch_td, NULL);
	netmap_tun_release(tun, na, drv_tx);
	if (drv->ntd_full_reset != NULL) {
		counter_u64_add(tun->nt_stats[NT_STAT_FULL_RESET], 1);
		if_printf(tun->nt_ifp, "netmap_tun: queues did not stop (%s), "
		    "full reset\n", drv->ntd_full_reset);
		snprintf(data, sizeof(data), "cause=%s", drv->ntd_full_reset);
		devctl_notify("ETHERNET", if_name(tun->nt_ifp), "FULL_RESET",
		    data);
	}
	return (error);
}

/*
 * Take the NIC out of netmap mode while the owner's fd stays bound.  The
 * steps are those of the last close, minus everything that would
 * invalidate the memory still mapped by the stalled owner: the krings are
 * locked (waiting for syncs in progress), marked off and nm_register(na, 0)
 * runs with active_fds hidden so that nm_clear_native_flags() sees a last
 * user; then NAF_REVOKED makes the adapter a zombie for the bound fds
 * (NIOC*SYNC fails with EIO, poll returns POLLERR, the later close does not
 * call the driver), the krings stay stopped and sleepers are woken.  The
 * switch has passed the host RX queue on to the driver; what a racing
 * netmap_transmit() queued since is dropped (*purged counts it).
 * NMG_LOCK held.
 */
static int
netmap_tun_revoke(struct netmap_tun *tun, struct netmap_adapter *na,
    u_int *purged)
{
	struct netmap_kring *kring;
	struct mbq fq;
	struct mbuf *m;
	enum txrx t;
	int active, error, i;

	if (!nm_native_on(na) || na->active_fds <= 0)
		return (ENXIO);
	netmap_set_all_rings(na, NM_KR_LOCKED);
	na->na_flags &= ~NAF_TUNNEL;
	for_rx_tx(t) {
		for (i = 0; i < netmap_real_rings(na, t); i++)
			NMR(na, t)[i]->nr_pending_mode = NKR_NETMAP_OFF;
	}
	active = na->active_fds;
	na->active_fds = 0;
	error = netmap_tun_switch(tun, na, 0);
	na->active_fds = active;
	if (error != 0 || nm_netmap_on(na)) {
		nm_prerr("%s: revoke: nm_register(0) failed (%d)", na->name,
		    error);
		na->na_flags &= ~NAF_NETMAP_ON;	/* never call the driver */
	}
	na->na_flags |= NAF_REVOKED;

	mbq_init(&fq);
	for_rx_tx(t) {
		for (i = 0; i < netmap_real_rings(na, t); i++) {
			kring = NMR(na, t)[i];
			kring->nkr_stopped = NM_KR_STOPPED;
			if (t == NR_RX && i >= nma_get_nrings(na, t)) {
				mbq_lock(&kring->rx_queue);
				while ((m = mbq_dequeue(&kring->rx_queue)) !=
				    NULL)
					mbq_enqueue(&fq, m);
				mbq_unlock(&kring->rx_queue);
			}
			nm_os_selwakeup(&kring->si);
		}
		nm_os_selwakeup(&na->si[t]);
	}
	*purged = mbq_len(&fq);
	mbq_purge(&fq);
	mbq_fini(&fq);
	return (0);
}

/*
 * The watchdog judges stalled work, not silence: it revokes the owner when
 * work has waited for the period P (watchdog_us) with no sync by the owner.
 * An owner asleep in poll(2) on an idle link is never revoked.  The callout
 * samples every quantum Q = P/4 while the owner is silent, and revokes once
 * the same work was seen unserved for 3Q: the first unserved frame waited
 * at least 3P/4 and at most P (plus the callout's latency).
 */
static sbintime_t
netmap_tun_quantum(struct netmap_tun *tun)
{

	return ((sbintime_t)tun->nt_watchdog_us * SBT_1US / 4);
}

/* The owner's last heartbeat.  (m) */
static sbintime_t
netmap_tun_hb(struct netmap_tun *tun)
{

	return ((sbintime_t)atomic_load_acq_64(&tun->nt_na->na_tun_hb));
}

/*
 * Work waiting for the owner: frames the NIC completed on a hardware RX
 * ring that no rxsync has taken (the descriptor's DD bit, read through the
 * driver without side effects), frames an rxsync delivered to an RX ring
 * that the owner has not released, and mbufs in the host RX queue.  The
 * reads race with the owner's syncs; they only decide when to look again,
 * and a revoke needs the same verdict over 3 samples.  Never a sync.  (m)
 */
static bool
netmap_tun_work(struct netmap_tun *tun)
{
	struct netmap_adapter *na = tun->nt_na;
	struct netmap_tun_drv *drv = tun->nt_drv;
	struct netmap_kring *kring;
	u_int i, nhw;

	nhw = nma_get_nrings(na, NR_RX);
	for (i = 0; i < netmap_real_rings(na, NR_RX); i++) {
		kring = NMR(na, NR_RX)[i];
		if (kring->rhead != kring->nr_hwtail)
			return (true);
		if (i >= nhw) {
			if (mbq_len(&kring->rx_queue) > 0)
				return (true);
		} else if (drv->ntd_rxd_avail != NULL &&
		    drv->ntd_rxd_avail(drv->ntd_softc, i,
		    netmap_idx_k2n(kring, kring->nr_hwtail)) > 0)
			return (true);
	}
	return (false);
}

/*
 * Watchdog callout, with nt_mtx held.  Never sleeps: a revoke is queued on
 * the taskqueue.
 */
static void
netmap_tun_callout(void *arg)
{
	struct netmap_tun *tun = arg;
	sbintime_t hb, now, q, wait;

	mtx_assert(&tun->nt_mtx, MA_OWNED);
	if (tun->nt_phase != NT_TUNNELED || tun->nt_watchdog_us == 0 ||
	    tun->nt_na == NULL || tun->nt_dying)
		return;
	now = sbinuptime();
	hb = netmap_tun_hb(tun);
	q = netmap_tun_quantum(tun);
	if (now < hb + q) {
		/* The owner synced within the last quantum. */
		tun->nt_work_since = 0;
		callout_reset_sbt(&tun->nt_callout, hb + q, 0,
		    netmap_tun_callout, tun, C_ABSOLUTE);
		return;
	}
	if (!netmap_tun_work(tun)) {
		/* Idle: nothing waits for the owner, asleep or not. */
		tun->nt_work_since = 0;
		callout_reset_sbt(&tun->nt_callout, now + q, 0,
		    netmap_tun_callout, tun, C_ABSOLUTE);
		return;
	}
	/* Work seen first now, or again after a sync that may have taken it. */
	if (tun->nt_work_since == 0 || tun->nt_work_since <= hb)
		tun->nt_work_since = now;
	wait = now - tun->nt_work_since;
	if (wait > tun->nt_max_wait)
		tun->nt_max_wait = wait;
	if (wait >= 3 * q) {
		tun->nt_task_gen = tun->nt_gen;
		tun->nt_task_reason = NT_REASON_WATCHDOG;
		taskqueue_enqueue(netmap_tun_tq, &tun->nt_task);
		return;
	}
	callout_reset_sbt(&tun->nt_callout, now + q, 0, netmap_tun_callout,
	    tun, C_ABSOLUTE);
}

/* (Re)start the watchdog if it is on.  (g+m) */
static void
netmap_tun_arm_callout(struct netmap_tun *tun)
{

	mtx_assert(&tun->nt_mtx, MA_OWNED);
	tun->nt_work_since = 0;
	if (tun->nt_phase == NT_TUNNELED && tun->nt_watchdog_us != 0)
		callout_reset_sbt(&tun->nt_callout, netmap_tun_hb(tun) +
		    netmap_tun_quantum(tun), 0, netmap_tun_callout, tun,
		    C_ABSOLUTE);
	else
		callout_stop(&tun->nt_callout);
}

/*
 * netmap core, netmap_poll() about to sleep (NM_TUN_SLEEP), no lock held:
 * unmask the RX queue interrupts so that the first frame wakes the owner.
 * The host RX queue wakes it through netmap_transmit() as always.
 */
void
netmap_tun_sleep(struct netmap_adapter *na)
{
	struct netmap_tun *tun = na->na_tun;
	struct netmap_tun_drv *drv;
	bool slept;

	if (tun == NULL || tun->nt_drv->ntd_rxintr == NULL)
		return;
	drv = tun->nt_drv;
	slept = false;
	mtx_lock(&tun->nt_mtx);
	if (atomic_load_acq_int(&drv->ntd_qmask) == NTD_Q_MASKED) {
		netmap_tun_qmode_locked(tun, NTD_Q_ASLEEP);
		drv->ntd_rxintr(drv->ntd_softc, true);
		slept = true;
	}
	mtx_unlock(&tun->nt_mtx);
	if (slept)
		counter_u64_add(tun->nt_stats[NT_STAT_SLEEP], 1);
}

/*
 * netmap core, the owner's first heartbeat after a sleep, no lock held:
 * it polls again, mask the RX queue interrupts (NAPI style).  An interrupt
 * already in flight re-enables nothing: the driver's enable paths see
 * NTD_Q_MASKED.
 */
void
netmap_tun_wake(struct netmap_adapter *na)
{
	struct netmap_tun *tun = na->na_tun;
	struct netmap_tun_drv *drv;

	if (tun == NULL) {
		atomic_store_rel_int(&na->na_tun_asleep, 0);
		return;
	}
	drv = tun->nt_drv;
	mtx_lock(&tun->nt_mtx);
	if (atomic_load_acq_int(&drv->ntd_qmask) == NTD_Q_ASLEEP) {
		netmap_tun_qmode_locked(tun, NTD_Q_MASKED);
		drv->ntd_rxintr(drv->ntd_softc, false);
	} else
		atomic_store_rel_int(&na->na_tun_asleep, 0);
	mtx_unlock(&tun->nt_mtx);
}

/* Back to "armed"/"default": the tunnel is over.  NMG_LOCK held. */
static void
netmap_tun_idle(struct netmap_tun *tun, enum nt_reason reason)
{
	const char *state;
	pid_t pid;

	mtx_lock(&tun->nt_mtx);
	callout_stop(&tun->nt_callout);
	tun->nt_phase = NT_IDLE;
	pid = tun->nt_pid;
	tun->nt_pid = 0;
	tun->nt_priv = NULL;
	tun->nt_gen++;
	state = netmap_tun_state_locked(tun);
	mtx_unlock(&tun->nt_mtx);
	netmap_tun_notify(tun, state, reason, pid);
}

/*
 * Revoke the owner's registration.  NMG_LOCK held, no other lock.
 */
static int
netmap_tun_revoke_locked(struct netmap_tun *tun, enum nt_reason reason)
{
	struct netmap_adapter *na = tun->nt_na;
	sbintime_t age, t0;
	u_int purged;
	pid_t pid;
	int error;

	NMG_LOCK_ASSERT();
	if (tun->nt_phase != NT_TUNNELED || na == NULL)
		return (EINVAL);
	t0 = sbinuptime();
	age = t0 - (sbintime_t)atomic_load_acq_64(&na->na_tun_hb);
	netmap_tun_qmode(tun, NTD_Q_OFF);
	error = netmap_tun_revoke(tun, na, &purged);
	if (error != 0) {
		netmap_tun_qmode(tun, NTD_Q_MASKED);
		if_printf(tun->nt_ifp, "netmap_tun: revoke failed: %d\n",
		    error);
		return (error);
	}
	mtx_lock(&tun->nt_mtx);
	callout_stop(&tun->nt_callout);
	tun->nt_phase = NT_REVOKED;
	tun->nt_gen++;
	pid = tun->nt_pid;
	mtx_unlock(&tun->nt_mtx);

	counter_u64_add(tun->nt_stats[NT_STAT_EXIT], 1);
	if (reason == NT_REASON_WATCHDOG)
		counter_u64_add(tun->nt_stats[NT_STAT_REVOKE_WATCHDOG], 1);
	else if (reason == NT_REASON_ADMIN)
		counter_u64_add(tun->nt_stats[NT_STAT_REVOKE_ADMIN], 1);
	if (purged > 0)
		counter_u64_add(tun->nt_stats[NT_STAT_HOST_DROP], purged);
	if_printf(tun->nt_ifp, "netmap_tun: %s revoke of pid %d: last "
	    "heartbeat %jd us before, NIC switched in %jd us\n",
	    nt_reason_names[reason], (int)pid, (intmax_t)(age / SBT_1US),
	    (intmax_t)((sbinuptime() - t0) / SBT_1US));
	netmap_tun_notify(tun, "revoked", reason, pid);
	return (0);
}

/* Watchdog and reconfiguration revokes, on netmap_tun_tq. */
static void
netmap_tun_task(void *arg, int pending __unused)
{
	struct netmap_tun *tun = arg;
	enum nt_reason reason;
	bool fire;

	NMG_LOCK();
	mtx_lock(&tun->nt_mtx);
	fire = false;
	reason = tun->nt_task_reason;
	if (tun->nt_phase != NT_TUNNELED || tun->nt_task_gen != tun->nt_gen ||
	    tun->nt_na == NULL || tun->nt_dying) {
		/* stale: the tunnel changed since the task was queued */
	} else if (reason == NT_REASON_RECONFIG) {
		fire = true;
	} else if (tun->nt_watchdog_us != 0) {
		/* The owner may have synced since the callout ran. */
		if (tun->nt_work_since != 0 &&
		    netmap_tun_hb(tun) < tun->nt_work_since)
			fire = true;
		else
			netmap_tun_arm_callout(tun);
	}
	mtx_unlock(&tun->nt_mtx);
	if (fire)
		(void)netmap_tun_revoke_locked(tun, reason);
	NMG_UNLOCK();
}

/*
 * Driver hook, SIOCSIFMTU, CTX lock held, before the new MTU is applied.
 * While tunneled, the owner's netmap buffers must hold a full frame: an
 * MTU whose frames do not fit is refused (EBUSY), the tunnel and the old
 * MTU stay.  The buffer size cannot change while the registration lives.
 */
int
netmap_tun_mtu(struct netmap_tun *tun, u_int mtu)
{
	u_int bufsz;
	pid_t pid;
	bool tunneled;

	if (tun == NULL)
		return (0);
	mtx_lock(&tun->nt_mtx);
	tunneled = tun->nt_phase == NT_TUNNELED && tun->nt_na != NULL &&
	    !tun->nt_dying;
	bufsz = tunneled ? netmap_tun_max_frame(tun->nt_na) : 0;
	pid = tun->nt_pid;
	mtx_unlock(&tun->nt_mtx);
	if (!tunneled || NT_FRAME(mtu) <= bufsz)
		return (0);
	if_printf(tun->nt_ifp, "netmap_tun: mtu %u refused while tunneled by "
	    "pid %d: %u-byte frames do not fit its %u-byte buffers; stop the "
	    "tunnel to change it\n", mtu, (int)pid, NT_FRAME(mtu), bufsz);
	netmap_tun_notify(tun, "tunneled", NT_REASON_REFUSED_MTU, pid);
	return (EBUSY);
}

/*
 * Driver hook, at the end of every (re)initialisation, CTX lock held.  A
 * reinit that the agent did not ask for is a reconfiguration of the NIC
 * under the owner (ifconfig up, capabilities, vlan(4) children): the
 * netmap rings are reset under the owner and survive, but a tunnel whose
 * invariants no longer hold is revoked (reason=reconfig), so that the
 * kernel path is never left dead while the state says "tunneled".
 */
void
netmap_tun_reinit(struct netmap_tun *tun)
{
	const char *cause;
	u_int frame;
	pid_t pid;

	if (tun == NULL || netmap_tun_qrestart(tun->nt_drv))
		return;		/* no agent, or the agent's own switch */
	cause = NULL;
	mtx_lock(&tun->nt_mtx);
	if (tun->nt_phase == NT_TUNNELED && tun->nt_na != NULL &&
	    !tun->nt_dying) {
		frame = NT_FRAME(if_getmtu(tun->nt_ifp));
		if ((if_getcapenable(tun->nt_ifp) & NT_BAD_CAPS) != 0)
			cause = "txcsum, txcsum6, tso or vlanhwtag enabled";
		else if (frame > netmap_tun_max_frame(tun->nt_na))
			cause = "frames larger than the buffers";
		if (cause != NULL) {
			tun->nt_task_gen = tun->nt_gen;
			tun->nt_task_reason = NT_REASON_RECONFIG;
			taskqueue_enqueue(netmap_tun_tq, &tun->nt_task);
		}
	}
	pid = tun->nt_pid;
	mtx_unlock(&tun->nt_mtx);
	if (cause != NULL)
		if_printf(tun->nt_ifp, "netmap_tun: reconfigured while "
		    "tunneled (%s): revoking pid %d\n", cause, (int)pid);
}

/*
 * First registration of an armed NIC that binds all hardware and all host
 * rings (NR_REG_NIC_SW): enter tunneled mode, with the queue interrupts
 * masked (the owner polls).
 */
static int
netmap_tun_enter(struct netmap_tun *tun, struct netmap_adapter *na,
    struct netmap_priv_d *priv)
{
	sbintime_t grace;
	pid_t pid;
	int error;

	if ((if_getcapenable(tun->nt_ifp) & NT_BAD_CAPS) != 0) {
		if_printf(tun->nt_ifp, "netmap_tun: refusing tunneled mode: "
		    "disable txcsum, txcsum6, tso and vlanhwtag\n");
		return (EOPNOTSUPP);
	}
	if (NT_FRAME(if_getmtu(tun->nt_ifp)) > netmap_tun_max_frame(na)) {
		if_printf(tun->nt_ifp, "netmap_tun: refusing tunneled mode at "
		    "mtu %u: a frame must fit one netmap buffer (%u bytes) and "
		    "one NIC receive buffer (%u bytes), the host rings carry no "
		    "NS_MOREFRAG chains\n", if_getmtu(tun->nt_ifp),
		    NETMAP_BUF_SIZE(na), na->rx_buf_maxsize);
		return (EOPNOTSUPP);
	}
	netmap_tun_qmode(tun, NTD_Q_MASKED);
	error = netmap_tun_switch(tun, na, 1);
	if (error != 0) {
		netmap_tun_qmode(tun, NTD_Q_OFF);
		return (error);
	}
	/* The watchdog's first look is at max(watchdog_us / 4, NT_GRACE). */
	grace = NT_GRACE - (sbintime_t)tun->nt_watchdog_us * SBT_1US / 4;
	atomic_store_rel_64(&na->na_tun_hb,
	    sbinuptime() + (grace > 0 ? grace : 0));
	na->na_flags |= NAF_TUNNEL;
	pid = curproc->p_pid;

	mtx_lock(&tun->nt_mtx);
	tun->nt_phase = NT_TUNNELED;
	tun->nt_pid = pid;
	tun->nt_priv = priv;
	tun->nt_gen++;
	netmap_tun_arm_callout(tun);
	mtx_unlock(&tun->nt_mtx);

	counter_u64_add(tun->nt_stats[NT_STAT_ENTER], 1);
	netmap_tun_notify(tun, "tunneled", NT_REASON_REGISTER, pid);
	return (0);
}

/*
 * netmap core: nm_register() of an adapter with an agent (NM_TUN_REGISTER).
 * Enters tunneled mode on the first NIC_SW registration of an armed NIC,
 * leaves it on the last close; a revoked NIC is already on the mbuf path,
 * so its close only clears NAF_REVOKED.  NMG_LOCK held.
 */
int
netmap_tun_register(struct netmap_adapter *na, struct netmap_priv_d *priv,
    int onoff)
{
	struct netmap_tun *tun = na->na_tun;
	enum txrx t;
	int error;

	NMG_LOCK_ASSERT();
	if (na->na_flags & NAF_REVOKED) {
		if (onoff)
			return (EBUSY);	/* the revoked fd is still bound */
		error = na->nm_register(na, 0);	/* zombie: no driver call */
		if (na->active_fds <= 0) {
			na->na_flags &= ~NAF_REVOKED;
			netmap_tun_idle(tun, NT_REASON_CLOSE);
		}
		return (error);
	}
	if (onoff && na->active_fds == 0 && tun->nt_armed && !tun->nt_dying &&
	    tun->nt_phase == NT_IDLE) {
		for_rx_tx(t) {
			if (nma_get_host_nrings(na, t) == 0 ||
			    priv->np_qfirst[t] != 0 ||
			    priv->np_qlast[t] != netmap_real_rings(na, t))
				return (netmap_tun_switch(tun, na, 1));
		}
		return (netmap_tun_enter(tun, na, priv));
	}
	if (!onoff && na->active_fds <= 0 && (na->na_flags & NAF_TUNNEL)) {
		na->na_flags &= ~NAF_TUNNEL;
		netmap_tun_qmode(tun, NTD_Q_OFF);
		error = netmap_tun_switch(tun, na, 0);
		counter_u64_add(tun->nt_stats[NT_STAT_EXIT], 1);
		netmap_tun_idle(tun, NT_REASON_CLOSE);
		return (error);
	}
	return (netmap_tun_switch(tun, na, onoff));
}

/*
 * cdevpriv destructor: the last close of a netmap fd (all its dup()ed and
 * inherited copies).  If a mapping outlives the owner's fd (leaked, or
 * inherited by a child), the registration would live on: revoke it now.
 * This includes an exiting owner (exit closes the descriptors before it
 * unmaps); the NIC switches once either way.
 */
void
netmap_tun_fd_dtor(void *data)
{
	struct netmap_priv_d *priv = data;
	struct netmap_adapter *na;

	NMG_LOCK();
	na = priv->np_na;
	if (priv->np_refs > 1 && na != NULL && na->na_tun != NULL &&
	    (na->na_flags & NAF_TUNNEL) != 0 && na->na_tun->nt_priv == priv)
		(void)netmap_tun_revoke_locked(na->na_tun, NT_REASON_CLOSE);
	netmap_priv_delete(priv);
	NMG_UNLOCK();
}

/* netmap core data path, while NAF_TUNNEL is set (NM_TUN_COUNT). */
void
netmap_tun_count(struct netmap_adapter *na, enum netmap_tun_counter c,
    u_int n)
{
	struct netmap_tun *tun = na->na_tun;
	static const enum nt_stat map[] = {
		[NETMAP_TUN_HOST_IN] = NT_STAT_HOST_IN,
		[NETMAP_TUN_HOST_OUT] = NT_STAT_HOST_OUT,
		[NETMAP_TUN_HOST_DROP] = NT_STAT_HOST_DROP,
	};

	if (tun != NULL && n > 0)
		counter_u64_add(tun->nt_stats[map[c]], n);
}

/*
 * An armed NIC is always opened through its native adapter, whatever
 * dev.netmap.admode says: netmap's emulated adapter would bypass the agent
 * (no tunneled state, no watchdog).  NMG_LOCK held.
 */
static void
netmap_tun_force_native(struct netmap_tun *tun, bool on)
{
	struct netmap_adapter *na = tun->nt_na;

	NMG_LOCK_ASSERT();
	if (na == NULL)
		return;
	if (on && (na->na_flags & NAF_FORCE_NATIVE) == 0) {
		na->na_flags |= NAF_FORCE_NATIVE;
		tun->nt_forced = true;
	} else if (!on && tun->nt_forced) {
		na->na_flags &= ~NAF_FORCE_NATIVE;
		tun->nt_forced = false;
	}
}

/*
 * Sysctl handlers.  Writes need root (default sysctl privilege, not
 * allowed in jails).  The handlers take NMG_LOCK, then nt_mtx.
 */
static int
netmap_tun_sysctl_enable(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	const char *state, *ostate;
	int error, val;
	bool changed;

	val = tun->nt_armed ? 1 : 0;
	error = sysctl_handle_int(oidp, &val, 0, req);
	if (error != 0 || req->newptr == NULL)
		return (error);
	if (val != 0 && val != 1)
		return (EINVAL);

	changed = false;
	NMG_LOCK();
	mtx_lock(&tun->nt_mtx);
	ostate = netmap_tun_state_locked(tun);
	mtx_unlock(&tun->nt_mtx);
	if (tun->nt_dying) {
		error = ENXIO;
	} else if (val == 1 && !tun->nt_armed) {
		if ((if_getcapenable(tun->nt_ifp) & NT_BAD_CAPS) != 0) {
			error = EOPNOTSUPP;
		} else {
			mtx_lock(&tun->nt_mtx);
			tun->nt_armed = true;
			mtx_unlock(&tun->nt_mtx);
			netmap_tun_force_native(tun, true);
			changed = true;
		}
	} else if (val == 0 && tun->nt_armed) {
		if (tun->nt_phase == NT_TUNNELED) {
			/* notifies state=revoked itself */
			error = netmap_tun_revoke_locked(tun, NT_REASON_ADMIN);
			ostate = "revoked";
		}
		if (error == 0) {
			mtx_lock(&tun->nt_mtx);
			tun->nt_armed = false;
			mtx_unlock(&tun->nt_mtx);
			netmap_tun_force_native(tun, false);
			changed = true;
		}
	}
	if (changed) {
		mtx_lock(&tun->nt_mtx);
		state = netmap_tun_state_locked(tun);
		mtx_unlock(&tun->nt_mtx);
		if (strcmp(state, ostate) != 0)
			netmap_tun_notify(tun, state, NT_REASON_ADMIN,
			    tun->nt_pid);
	}
	NMG_UNLOCK();
	return (error);
}

static int
netmap_tun_sysctl_state(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	char buf[16];

	mtx_lock(&tun->nt_mtx);
	strlcpy(buf, netmap_tun_state_locked(tun), sizeof(buf));
	mtx_unlock(&tun->nt_mtx);
	return (sysctl_handle_string(oidp, buf, sizeof(buf), req));
}

static int
netmap_tun_sysctl_watchdog(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	u_int val;
	int error;

	val = tun->nt_watchdog_us;
	error = sysctl_handle_int(oidp, &val, 0, req);
	if (error != 0 || req->newptr == NULL)
		return (error);
	if (val != 0 && (val < NT_WATCHDOG_MIN_US || val > NT_WATCHDOG_MAX_US))
		return (EINVAL);

	NMG_LOCK();
	mtx_lock(&tun->nt_mtx);
	tun->nt_watchdog_us = val;
	if (tun->nt_na != NULL)
		netmap_tun_arm_callout(tun);
	tun->nt_gen++;		/* a queued revoke is stale now */
	mtx_unlock(&tun->nt_mtx);
	NMG_UNLOCK();
	return (0);
}
static int
netmap_tun_sysctl_pid(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	int val;

	val = tun->nt_pid;
	return (sysctl_handle_int(oidp, &val, 0, req));
}

static int
netmap_tun_sysctl_revoke(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	int error, val;

	val = 0;
	error = sysctl_handle_int(oidp, &val, 0, req);
	if (error != 0 || req->newptr == NULL)
		return (error);
	if (val != 1)
		return (EINVAL);
	NMG_LOCK();
	if (tun->nt_dying || tun->nt_phase != NT_TUNNELED)
		error = EINVAL;
	else
		error = netmap_tun_revoke_locked(tun, NT_REASON_ADMIN);
	NMG_UNLOCK();
	return (error);
}

static int
netmap_tun_sysctl_max_gap(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	uint64_t val;

	NMG_LOCK();
	val = tun->nt_na != NULL ?
	    atomic_load_acq_64(&tun->nt_na->na_tun_maxgap) / SBT_1US : 0;
	NMG_UNLOCK();
	return (sysctl_handle_64(oidp, &val, 0, req));
}

static int
netmap_tun_sysctl_max_wait(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	uint64_t val;

	mtx_lock(&tun->nt_mtx);
	val = tun->nt_max_wait / SBT_1US;
	mtx_unlock(&tun->nt_mtx);
	return (sysctl_handle_64(oidp, &val, 0, req));
}

static int
netmap_tun_sysctl_reset(SYSCTL_HANDLER_ARGS)
{
	struct netmap_tun *tun = arg1;
	int error, i, val;

	val = 0;
	error = sysctl_handle_int(oidp, &val, 0, req);
	if (error != 0 || req->newptr == NULL)
		return (error);
	if (val != 1)
		return (EINVAL);
	NMG_LOCK();
	for (i = 0; i < NT_NSTATS; i++)
		counter_u64_zero(tun->nt_stats[i]);
	if (tun->nt_na != NULL)
		atomic_store_rel_64(&tun->nt_na->na_tun_maxgap, 0);
	mtx_lock(&tun->nt_mtx);
	tun->nt_max_wait = 0;
	mtx_unlock(&tun->nt_mtx);
	NMG_UNLOCK();
	return (0);
}

static void
netmap_tun_sysctl_init(struct netmap_tun *tun)
{
	struct sysctl_ctx_list *ctx = &tun->nt_sysctl;
	struct sysctl_oid *node, *snode;
	struct sysctl_oid_list *list, *slist;
	int i;

	sysctl_ctx_init(ctx);
	node = SYSCTL_ADD_NODE(ctx,
	    SYSCTL_CHILDREN(device_get_sysctl_tree(tun->nt_dev)), OID_AUTO,
	    "tunnel", CTLFLAG_RD | CTLFLAG_MPSAFE, NULL,
	    "netmap_tun(4) tunneled mode");
	list = SYSCTL_CHILDREN(node);
	SYSCTL_ADD_PROC(ctx, list, OID_AUTO, "enable",
	    CTLTYPE_INT | CTLFLAG_RW | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_enable, "I",
	    "Arm (1) or disarm (0) tunneled mode; 0 revokes a tunnel");
	SYSCTL_ADD_PROC(ctx, list, OID_AUTO, "state",
	    CTLTYPE_STRING | CTLFLAG_RD | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_state, "A",
	    "default, armed, tunneled or revoked");
	SYSCTL_ADD_PROC(ctx, list, OID_AUTO, "watchdog_us",
	    CTLTYPE_UINT | CTLFLAG_RW | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_watchdog, "IU",
	    "Revoke the owner when work waited this many microseconds without "
	    "a sync (0 = off, else 1000..10000000)");
	SYSCTL_ADD_PROC(ctx, list, OID_AUTO, "owner_pid",
	    CTLTYPE_INT | CTLFLAG_RD | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_pid, "I", "Process owning the tunnel, 0 if none");
	SYSCTL_ADD_PROC(ctx, list, OID_AUTO, "revoke",
	    CTLTYPE_INT | CTLFLAG_WR | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_revoke, "I", "Write 1 to revoke the tunnel now");

	snode = SYSCTL_ADD_NODE(ctx, list, OID_AUTO, "stats",
	    CTLFLAG_RD | CTLFLAG_MPSAFE, NULL, "Tunneled mode statistics");
	slist = SYSCTL_CHILDREN(snode);
	for (i = 0; i < NT_NSTATS; i++)
		SYSCTL_ADD_COUNTER_U64(ctx, slist, OID_AUTO,
		    nt_stat_desc[i].name, CTLFLAG_RD, &tun->nt_stats[i],
		    nt_stat_desc[i].descr);
	SYSCTL_ADD_PROC(ctx, slist, OID_AUTO, "max_gap_us",
	    CTLTYPE_U64 | CTLFLAG_RD | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_max_gap, "QU",
	    "Longest gap between two owner heartbeats while tunneled (us)");
	SYSCTL_ADD_PROC(ctx, slist, OID_AUTO, "max_wait_us",
	    CTLTYPE_U64 | CTLFLAG_RD | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_max_wait, "QU",
	    "Longest that work waited for the owner, as the watchdog sampled "
	    "it every watchdog_us/4 (us)");
	SYSCTL_ADD_PROC(ctx, slist, OID_AUTO, "reset",
	    CTLTYPE_INT | CTLFLAG_WR | CTLFLAG_MPSAFE, tun, 0,
	    netmap_tun_sysctl_reset, "I", "Write 1 to zero the statistics");
}

/*
 * Driver attach, after the netmap adapter of ifp exists.  drv lives in the
 * driver's softc.  Sleeps.
 */
int
netmap_tun_attach(device_t dev, if_t ifp, struct netmap_tun_drv *drv,
    struct netmap_tun **tunp)
{
	struct netmap_adapter *na;
	struct netmap_tun *tun;
	int i;

	*tunp = NULL;
	tun = malloc(sizeof(*tun), M_NETMAP_TUN, M_WAITOK | M_ZERO);
	mtx_init(&tun->nt_mtx, "netmap_tun state", NULL, MTX_DEF);
	mbufq_init(&tun->nt_hold, NT_HOLD_MAX);
	callout_init_mtx(&tun->nt_callout, &tun->nt_mtx, 0);
	TASK_INIT(&tun->nt_task, 0, netmap_tun_task, tun);
	tun->nt_ifp = ifp;
	tun->nt_dev = dev;
	tun->nt_drv = drv;
	tun->nt_watchdog_us = NT_WATCHDOG_DFLT_US;
	for (i = 0; i < NT_NSTATS; i++)
		tun->nt_stats[i] = counter_u64_alloc(M_WAITOK);

	NMG_LOCK();
	if (!NM_NA_VALID(ifp) || (na = NA(ifp)) == NULL ||
	    (na->na_flags & NAF_NATIVE) == 0 || na->na_tun != NULL) {
		NMG_UNLOCK();
		for (i = 0; i < NT_NSTATS; i++)
			counter_u64_free(tun->nt_stats[i]);
		mtx_destroy(&tun->nt_mtx);
		free(tun, M_NETMAP_TUN);
		device_printf(dev, "netmap_tun: no native netmap adapter\n");
		return (ENXIO);
	}
	mtx_lock(&tun->nt_mtx);
	tun->nt_na = na;
	mtx_unlock(&tun->nt_mtx);
	na->na_tun = tun;
	NMG_UNLOCK();

	netmap_tun_sysctl_init(tun);
	*tunp = tun;
	return (0);
}

/*
 * Driver detach, before the netmap adapter goes away.  An active tunnel is
 * revoked (reason=detach); a bound fd then only sees a zombie adapter.
 * Sleeps; call without driver or netmap locks.
 */
void
netmap_tun_detach(struct netmap_tun **tunp)
{
	struct netmap_adapter *na;
	struct netmap_tun *tun = *tunp;
	bool armed;
	int i;

	if (tun == NULL)
		return;
	/* Removes the oids and waits for running handlers. */
	sysctl_ctx_free(&tun->nt_sysctl);

	NMG_LOCK();
	mtx_lock(&tun->nt_mtx);
	tun->nt_dying = true;
	callout_stop(&tun->nt_callout);
	mtx_unlock(&tun->nt_mtx);
	if (tun->nt_phase == NT_TUNNELED)
		(void)netmap_tun_revoke_locked(tun, NT_REASON_DETACH);
	netmap_tun_force_native(tun, false);
	netmap_tun_qmode(tun, NTD_Q_OFF);
	na = tun->nt_na;
	if (na != NULL) {
		na->na_flags &= ~NAF_TUNNEL;
		na->na_tun = NULL;
	}
	mtx_lock(&tun->nt_mtx);
	tun->nt_na = NULL;
	armed = tun->nt_armed;
	tun->nt_armed = false;
	tun->nt_phase = NT_IDLE;
	tun->nt_gen++;
	mtx_unlock(&tun->nt_mtx);
	*tunp = NULL;
	NMG_UNLOCK();

	/* Not under NMG_LOCK: the task takes it. */
	callout_drain(&tun->nt_callout);
	taskqueue_drain(netmap_tun_tq, &tun->nt_task);
	/* netmap_transmit() may still be counting in the network epoch. */
	NET_EPOCH_WAIT();
	mbufq_drain(&tun->nt_hold);	/* empty since netmap_tun_release() */

	if (armed)
		netmap_tun_notify(tun, "default", NT_REASON_DETACH, 0);
	for (i = 0; i < NT_NSTATS; i++)
		counter_u64_free(tun->nt_stats[i]);
	mtx_destroy(&tun->nt_mtx);
	free(tun, M_NETMAP_TUN);
}
