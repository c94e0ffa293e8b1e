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
 * netmap_tun: tunneled mode for netmap NICs (see netmap_tun(4)).
 *
 * A NIC driver calls netmap_tun_attach() once its netmap adapter exists and
 * netmap_tun_detach() before it goes away; the agent then owns the
 * dev.<driver>.<unit>.tunnel sysctl tree.  The first NIC_SW registration of
 * an armed NIC enters tunneled mode: the registering process owns the NIC,
 * each of its NIOC*SYNC and poll calls is a heartbeat, and a watchdog
 * revokes the registration when work (frames the owner has not taken)
 * waited watchdog_us without a heartbeat.
 *
 * While the owner sleeps in poll(2) on an idle link, the agent unmasks the
 * RX queue interrupts (ntd_rxintr) so that the first frame wakes it; its
 * next sync masks them again.  The watchdog revokes the owner when work
 * (frames it has not taken) waited a period without a sync.
 *
 * The driver also calls netmap_tun_mtu() before it applies a new MTU (an
 * error refuses it) and netmap_tun_reinit() at the end of every
 * (re)initialisation: a reconfiguration under a tunnel either keeps the
 * tunnel whole or revokes it.
 *
 * Every switch of an armed NIC between mbuf rings and netmap rings is
 * hitless: while the agent runs nm_register(), netmap_tun_qrestart() is
 * true in that thread, and the driver then restarts only its queues (no MAC
 * or PHY reset).  A driver that cannot stop its queues falls back to its
 * full reset and says so with netmap_tun_full_reset().
 *
 * Lock order: NMG_LOCK -> driver (iflib CTX) lock -> netmap_tun state mutex.
 * The netmap core hooks are declared in netmap_kern.h (WITH_NETMAP_TUN).
 */

#ifndef _DEV_NETMAP_NETMAP_TUN_H_
#define _DEV_NETMAP_NETMAP_TUN_H_

#ifdef _KERNEL

struct netmap_tun;
struct thread;

/*
 * What the agent tells the driver, and what the driver offers the agent.
 * It is a member of the driver's softc, so the driver never dereferences
 * the agent.
 * - ntd_qmask: the queue interrupt mode, one of NTD_Q_*.  Changed by the
 *   agent only under its state mutex (so that a revoke's NTD_Q_OFF is never
 *   overwritten by an owner's late wakeup), loaded (acq) by the driver's
 *   interrupt enable paths.
 * - ntd_switch_td: the thread running a hitless nm_register().  Stored and
 *   cleared by that thread under NMG_LOCK; the driver only compares it with
 *   curthread (under its CTX lock), so no ordering is needed.
 * - ntd_full_reset: set by the driver, in that thread under CTX, when its
 *   queues did not stop and it fell back to a full reset (the cause); read
 *   by the agent once nm_register() returned.
 * - ntd_softc, ntd_rxintr, ntd_rxd_avail: (c) set by the driver before
 *   netmap_tun_attach().  ntd_rxintr() unmasks (on) or masks the RX queue
 *   interrupts right now; ntd_rxd_avail() says whether the NIC has
 *   completed the descriptor nic_i of RX queue qid (no side effect).  Both
 *   are register or descriptor accesses only: any context, no lock.
 */
#define	NTD_Q_OFF	0	/* not tunneled: the driver's own policy */
#define	NTD_Q_MASKED	1	/* tunneled, the owner polls: masked */
#define	NTD_Q_ASLEEP	2	/* tunneled, the owner sleeps in poll(2) */

struct netmap_tun_drv {
	volatile u_int		ntd_qmask;
	struct thread *volatile	ntd_switch_td;
	const char		*ntd_full_reset;
	void			*ntd_softc;
	void			(*ntd_rxintr)(void *softc, bool on);
	int			(*ntd_rxd_avail)(void *softc, u_int qid,
				    u_int nic_i);
};

/* Driver side, any context: keep the queue interrupts masked? */
#define	netmap_tun_qmasked(drv)						\
	(atomic_load_acq_int(&(drv)->ntd_qmask) == NTD_Q_MASKED)
/* Driver stop routine, CTX lock held: restart only the queues? */
#define	netmap_tun_qrestart(drv)					\
	(atomic_load_ptr(&(drv)->ntd_switch_td) == curthread)
/* Driver: the queues did not stop (cause), a full reset follows. */
#define	netmap_tun_full_reset(drv, cause)				\
	((drv)->ntd_full_reset = (cause))

#ifdef DEV_NETMAP
/* Driver attach/detach; may sleep, call without driver or netmap locks. */
int	netmap_tun_attach(device_t dev, if_t ifp, struct netmap_tun_drv *drv,
	    struct netmap_tun **tunp);
void	netmap_tun_detach(struct netmap_tun **tunp);
/* Driver reconfiguration, CTX lock held; tun may be NULL. */
int	netmap_tun_mtu(struct netmap_tun *tun, u_int mtu);
void	netmap_tun_reinit(struct netmap_tun *tun);
#else
#define	netmap_tun_attach(dev, ifp, drv, tunp)	((void)(tunp), 0)
#define	netmap_tun_detach(tunp)			((void)(tunp))
#define	netmap_tun_mtu(tun, mtu)		((void)(tun), 0)
#define	netmap_tun_reinit(tun)			((void)(tun))
#endif

#endif /* _KERNEL */

#endif /* !_DEV_NETMAP_NETMAP_TUN_H_ */
