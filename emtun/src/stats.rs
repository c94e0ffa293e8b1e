//! Per-path counters of the tunnel engine (frames, not bytes).

/// Frames the engine discarded, by reason. Every discard is counted here;
/// backpressure is not a discard (the frame waits in its ring).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Shorter than an Ethernet header (or a truncated VLAN tag).
    pub runt: u64,
    /// Slot length larger than the netmap buffer.
    pub oversize: u64,
    /// Slot naming no buffer of the port's pool.
    pub bad_buf_idx: u64,
    /// Unclaimed frame on a port without host rings.
    pub no_host_ring: u64,
}

impl Drops {
    /// Adds `o` to these counters.
    pub fn add(&mut self, o: &Drops) {
        self.runt += o.runt;
        self.oversize += o.oversize;
        self.bad_buf_idx += o.bad_buf_idx;
        self.no_host_ring += o.no_host_ring;
    }

    /// All discards.
    pub fn total(&self) -> u64 {
        self.runt + self.oversize + self.bad_buf_idx + self.no_host_ring
    }
}

/// Counters since the tunnel started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Claimed frames handed to the application.
    pub to_app: u64,
    /// Frames the application queued on hardware TX.
    pub from_app: u64,
    /// Unclaimed NIC frames moved to the host stack.
    pub to_host: u64,
    /// Host-stack frames moved to the NIC.
    pub from_host: u64,
    /// Frames discarded, by reason.
    pub dropped: Drops,
    /// Times a destination ring was full and its source had to wait.
    pub backpressure: u64,
    /// Sync rounds (each one a heartbeat for the kernel watchdog).
    pub rounds: u64,
}

impl Stats {
    /// Adds `o` to these counters (a supervised run sums its attachments).
    pub fn add(&mut self, o: &Stats) {
        self.to_app += o.to_app;
        self.from_app += o.from_app;
        self.to_host += o.to_host;
        self.from_host += o.from_host;
        self.dropped.add(&o.dropped);
        self.backpressure += o.backpressure;
        self.rounds += o.rounds;
    }
}
