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
 * A NIC driver that supports tunneled mode calls netmap_tun_attach() once
 * its netmap adapter exists, and netmap_tun_detach() before it goes away.
 * The agent then owns the dev.<driver>.<unit>.tunnel sysctl tree.  The
 * first NIC_SW registration of an armed NIC enters tunneled mode: the
 * registering process owns the NIC, each of its NIOC*SYNC and poll calls
 * is a heartbeat, and a watchdog revokes the registration (netmap_revoke())
 * when the heartbeat stops for longer than watchdog_us.
 *
 * Lock order: NMG_LOCK -> iflib CTX lock -> netmap_tun state mutex.
 * The state mutex is a leaf: nothing is called with it held except
 * callout and taskqueue enqueue operations and counter(9).
 */

#ifndef _DEV_NETMAP_NETMAP_TUN_H_
#define _DEV_NETMAP_NETMAP_TUN_H_

#ifdef _KERNEL

struct netmap_adapter;
struct netmap_priv_d;
struct netmap_tun;

/* Driver callbacks. */
struct netmap_tun_ops {
	/*
	 * Mask (masked = true) or unmask the per-queue interrupts.  Called
	 * with NMG_LOCK held and no driver lock, right before the NIC is
	 * reinitialised for entering or leaving netmap mode; the driver's
	 * interrupt enable routines must honour the setting from then on.
	 * Link state interrupts must stay enabled.  Must not sleep.
	 */
	void	(*nto_qintr)(void *arg, bool masked);
};

/* Counters updated by the netmap core (netmap_tun_count()). */
enum netmap_tun_counter {
	NETMAP_TUN_HOST_IN,	/* NIC -> host stack frames (host TX ring) */
	NETMAP_TUN_HOST_OUT,	/* host stack -> host RX ring frames */
	NETMAP_TUN_HOST_DROP,	/* host stack frames dropped */
};

/* Driver interface; may sleep, call without driver or netmap locks. */
int	netmap_tun_attach(device_t dev, if_t ifp,
	    const struct netmap_tun_ops *ops, void *arg,
	    struct netmap_tun **tunp);
void	netmap_tun_detach(struct netmap_tun *tun);

/* netmap core interface; all called with NMG_LOCK held. */
int	netmap_tun_start(struct netmap_adapter *na,
	    struct netmap_priv_d *priv);
void	netmap_tun_registered(struct netmap_adapter *na);
void	netmap_tun_stop(struct netmap_adapter *na);
void	netmap_tun_orphaned(struct netmap_adapter *na);

/* netmap core data path; no lock needed, only while NAF_TUNNEL is set. */
void	netmap_tun_count(struct netmap_adapter *na,
	    enum netmap_tun_counter c, u_int n);

#endif /* _KERNEL */

#endif /* !_DEV_NETMAP_NETMAP_TUN_H_ */
