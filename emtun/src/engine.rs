//! The data path: one pass over all rings between two syncs.
//!
//! ```text
//!   hw RX i ──claimed?──> app ──> hw TX i        (App::on_frame / Sender)
//!           └─else─swap─> host TX (i mod h)      (kernel stack input)
//!   host RX j ───swap───> hw TX 0                (kernel stack output)
//! ```
//!
//! Moves swap `buf_idx` between slots (`NS_BUF_CHANGED`), never copying.
//! A frame whose destination ring is full stays where it is, and so does
//! everything behind it on its ring: per-ring order is kept and a full ring
//! is backpressure, never a loss. `NS_MOREFRAG` chains move whole.

use netmap_user::{Frame, MoveError, Rings, RxRing, SendError, SlotError, TxRing, TxSlot};

use crate::classify::{ClaimSet, Class};
use crate::stats::Stats;

/// Shortest frame that carries an Ethernet header.
const ETH_HLEN: u16 = 14;

/// The application side of a tunnel: it sees claimed frames zero-copy and
/// may transmit on the hardware rings.
pub trait App {
    /// A claimed frame; valid for this call. Replies go out through `tx`.
    fn on_frame(&mut self, frame: Frame<'_>, tx: &mut Sender<'_, '_>);

    /// Called once per pass, after the receive work, to originate frames.
    fn on_pass(&mut self, _tx: &mut Sender<'_, '_>) {}
}

/// Any `FnMut(&[u8])` is an application that only consumes.
impl<F: FnMut(&[u8])> App for F {
    fn on_frame(&mut self, frame: Frame<'_>, _tx: &mut Sender<'_, '_>) {
        self(frame.data())
    }
}

/// Transmit access to one hardware TX ring for the application.
pub struct Sender<'r, 'p> {
    ring: Option<&'r mut TxRing<'p>>,
    from_app: &'r mut u64,
}

impl<'p> Sender<'_, 'p> {
    /// Copies `frame` into the next free slot.
    ///
    /// # Errors
    /// [`SendError::Full`] when the ring has no free slot until the next
    /// sync (backpressure), [`SendError::TooLong`] when the frame exceeds a
    /// buffer; nothing is queued then.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        let ring = self.ring.as_deref_mut().ok_or(SendError::Full)?;
        ring.send(frame)?;
        *self.from_app += 1;
        Ok(())
    }

    /// Builds a frame in place: `fill` writes into the buffer and returns the
    /// frame length (0 abandons the slot).
    ///
    /// # Errors
    /// As [`Sender::send`]; `TooLong` when `fill` returns more than the
    /// buffer holds.
    pub fn send_with(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> Result<(), SendError> {
        let ring = self.ring.as_deref_mut().ok_or(SendError::Full)?;
        let mut slot: TxSlot<'_, 'p> = ring.reserve()?;
        let len = fill(slot.buf());
        if len == 0 {
            return Ok(());
        }
        slot.set_len(len)?;
        slot.commit();
        *self.from_app += 1;
        Ok(())
    }

    /// Free slots left on this ring until the next sync.
    pub fn space(&self) -> usize {
        self.ring.as_deref().map_or(0, TxRing::space)
    }
}

/// The tunnel engine: classification, zero-copy moves and counters.
#[derive(Debug)]
pub struct Engine {
    claims: ClaimSet,
    batch: usize,
    stats: Stats,
    copy: bool,
    /// Claimed frames spanning several slots are gathered here (the one
    /// copy on the app path; single-slot frames are never copied).
    gather: Vec<u8>,
}

enum Step {
    Moved,
    Stop,
}

impl Engine {
    /// `batch`: at most this many frames move per ring per pass (>= 1).
    pub fn new(claims: ClaimSet, batch: usize) -> Engine {
        Engine {
            claims,
            batch: batch.max(1),
            stats: Stats::default(),
            copy: false,
            gather: Vec::new(),
        }
    }

    /// Copy frames instead of swapping buffers: the baseline the zero-copy
    /// path is measured against. Never use it for real traffic.
    pub fn copying(mut self) -> Engine {
        self.copy = true;
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub(crate) fn count_round(&mut self) {
        self.stats.rounds += 1;
    }

    /// Runs one pass; returns the number of frames that moved or were
    /// handed to the application.
    pub fn pass<A: App + ?Sized>(&mut self, rings: &mut Rings<'_>, app: &mut A) -> usize {
        let mut work = 0;
        let nhost_tx = rings.host_tx.len();
        for i in 0..rings.hw_rx.len() {
            let Some(mut rx) = rings.hw_rx.ring(i) else {
                continue;
            };
            let mut host = if nhost_tx == 0 {
                None
            } else {
                rings.host_tx.ring(i % nhost_tx)
            };
            let mut reply = rings.hw_tx.ring(i.min(rings.hw_tx.len().saturating_sub(1)));
            work += self.drain_nic(&mut rx, host.as_mut(), reply.as_mut(), app);
        }
        for j in 0..rings.host_rx.len() {
            let (Some(mut rx), Some(mut tx)) = (rings.host_rx.ring(j), rings.hw_tx.ring(0)) else {
                continue;
            };
            work += self.drain_host(&mut rx, &mut tx);
        }
        let mut tx = rings.hw_tx.ring(0);
        let mut sender = Sender {
            ring: tx.as_mut(),
            from_app: &mut self.stats.from_app,
        };
        app.on_pass(&mut sender);
        work
    }

    /// Drops the frame (or chain) at head for `why`.
    fn drop_chain(&mut self, rx: &mut RxRing<'_>, slots: usize, why: Drop) {
        let d = &mut self.stats.dropped;
        match why {
            Drop::Runt => d.runt += 1,
            Drop::Oversize => d.oversize += 1,
            Drop::BadBuf => d.bad_buf_idx += 1,
            Drop::NoHost => d.no_host_ring += 1,
        }
        for _ in 0..slots {
            rx.advance();
        }
    }

    /// Moves a whole chain of `slots` from `rx` to `tx`, or nothing.
    fn move_chain(&mut self, rx: &mut RxRing<'_>, tx: &mut TxRing<'_>, slots: usize) -> Step {
        if tx.space() < slots {
            self.stats.backpressure += 1;
            return Step::Stop;
        }
        for _ in 0..slots {
            let r = if self.copy {
                rx.copy_to(tx)
            } else {
                rx.move_to(tx)
            };
            match r {
                Ok(()) => {}
                Err(MoveError::Bad(e)) => {
                    // Only the TX side can be bad here (RX was checked): a
                    // corrupt free slot. Drop the RX frame rather than lose
                    // its buffer.
                    self.drop_chain(rx, 1, e.into());
                }
                Err(MoveError::Full) | Err(MoveError::Empty) | Err(MoveError::ForeignRing) => {
                    return Step::Stop
                }
            }
        }
        Step::Moved
    }

    /// Checks the slots after the first of a chain at head.
    fn check_chain(rx: &RxRing<'_>, slots: usize) -> Result<(), Drop> {
        for k in 1..slots {
            if let Some(Err(e)) = rx.peek_at(k) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn drain_nic<A: App + ?Sized>(
        &mut self,
        rx: &mut RxRing<'_>,
        mut host: Option<&mut TxRing<'_>>,
        mut reply: Option<&mut TxRing<'_>>,
        app: &mut A,
    ) -> usize {
        let mut done = 0;
        while done < self.batch {
            // A pure forwarder moves runs of plain frames without looking
            // at them; anything else takes the careful path below.
            if self.claims.is_empty() && !self.copy {
                if let Some(h) = host.as_deref_mut() {
                    let n = rx.move_run(h, self.batch - done, ETH_HLEN);
                    self.stats.to_host += n as u64;
                    done += n;
                    if done == self.batch {
                        break;
                    }
                }
            }
            let Some((first, slots)) = rx.peek_chain() else {
                break;
            };
            let frame = match first
                .map_err(Drop::from)
                .and_then(|f| Self::check_chain(rx, slots).map(|()| f))
            {
                Ok(f) => f,
                Err(why) => {
                    self.drop_chain(rx, slots, why);
                    continue;
                }
            };
            // A pure forwarder never reads frame data: the length decides.
            let class = if self.claims.is_empty() {
                if frame.len() < usize::from(ETH_HLEN) {
                    Class::Runt
                } else {
                    Class::Kernel
                }
            } else {
                self.claims.classify(frame.data())
            };
            match class {
                Class::Runt => self.drop_chain(rx, slots, Drop::Runt),
                Class::App(_) => {
                    let mut tx = Sender {
                        ring: reply.as_deref_mut(),
                        from_app: &mut self.stats.from_app,
                    };
                    if slots == 1 {
                        app.on_frame(frame, &mut tx);
                    } else {
                        self.gather.clear();
                        for k in 0..slots {
                            if let Some(Ok(f)) = rx.peek_at(k) {
                                self.gather.extend_from_slice(f.data());
                            }
                        }
                        app.on_frame(Frame::gathered(&self.gather), &mut tx);
                    }
                    self.stats.to_app += 1;
                    for _ in 0..slots {
                        rx.advance();
                    }
                }
                Class::Kernel => {
                    let Some(h) = host.as_deref_mut() else {
                        self.drop_chain(rx, slots, Drop::NoHost);
                        continue;
                    };
                    match self.move_chain(rx, h, slots) {
                        Step::Moved => self.stats.to_host += 1,
                        Step::Stop => break,
                    }
                }
            }
            done += 1;
        }
        done
    }

    fn drain_host(&mut self, rx: &mut RxRing<'_>, tx: &mut TxRing<'_>) -> usize {
        let mut done = 0;
        while done < self.batch {
            if !self.copy {
                let n = rx.move_run(tx, self.batch - done, ETH_HLEN);
                self.stats.from_host += n as u64;
                done += n;
                if done == self.batch {
                    break;
                }
            }
            let Some((first, slots)) = rx.peek_chain() else {
                break;
            };
            match first
                .map_err(Drop::from)
                .and_then(|f| Self::check_chain(rx, slots).map(|()| f))
            {
                Ok(f) if f.len() < usize::from(ETH_HLEN) => {
                    self.drop_chain(rx, slots, Drop::Runt);
                    continue;
                }
                Ok(_) => {}
                Err(why) => {
                    self.drop_chain(rx, slots, why);
                    continue;
                }
            }
            match self.move_chain(rx, tx, slots) {
                Step::Moved => self.stats.from_host += 1,
                Step::Stop => break,
            }
            done += 1;
        }
        done
    }
}

#[derive(Clone, Copy)]
enum Drop {
    Runt,
    Oversize,
    BadBuf,
    NoHost,
}

impl From<SlotError> for Drop {
    fn from(e: SlotError) -> Drop {
        match e {
            SlotError::BadBufIdx(_) => Drop::BadBuf,
            SlotError::Oversize(_) => Drop::Oversize,
        }
    }
}
