//! The shutdownd fifo protocol, byte-compatible with s6-linux-init 1.2.
//!
//! A request is 17 bytes: one command byte (`h` halt, `p` poweroff, `r` reboot, `S` run
//! rc.shutdown only), a 12-byte TAI64N *relative* delay (8-byte big-endian seconds, 4-byte
//! big-endian nanoseconds; zero means now), and a big-endian u32 grace time in milliseconds
//! (zero means the daemon's default). A single byte `c` cancels a pending request.

use std::time::Duration;

pub const REQUEST_LEN: usize = 17;
/// s6-linux-init caps the grace time at five minutes; so do we.
pub const MAX_GRACE_MS: u32 = 300_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Halt,
    Poweroff,
    Reboot,
    /// Run rc.shutdown, then keep the system up (`shutdown` without -h/-p/-r).
    Stop,
}

impl Action {
    pub fn byte(self) -> u8 {
        match self {
            Action::Halt => b'h',
            Action::Poweroff => b'p',
            Action::Reboot => b'r',
            Action::Stop => b'S',
        }
    }

    pub fn from_byte(b: u8) -> Option<Action> {
        match b {
            b'h' => Some(Action::Halt),
            b'p' => Some(Action::Poweroff),
            b'r' => Some(Action::Reboot),
            b'S' => Some(Action::Stop),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Halt => "halt",
            Action::Poweroff => "poweroff",
            Action::Reboot => "reboot",
            Action::Stop => "stop",
        }
    }

    /// What reboot(2) is asked to do at the end of stage 4 (or at once with `-f`). `Stop`
    /// never gets there; should it, a reboot leaves the machine usable.
    pub fn reboot_mode(self) -> nix::sys::reboot::RebootMode {
        use nix::sys::reboot::RebootMode;
        match self {
            Action::Halt => RebootMode::RB_HALT_SYSTEM,
            Action::Poweroff => RebootMode::RB_POWER_OFF,
            Action::Reboot | Action::Stop => RebootMode::RB_AUTOBOOT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub delay: Duration,
    /// 0 = the daemon's default.
    pub grace_ms: u32,
}

impl Request {
    pub fn now(action: Action) -> Self {
        Request { action, delay: Duration::ZERO, grace_ms: 0 }
    }

    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        b[0] = self.action.byte();
        b[1..9].copy_from_slice(&self.delay.as_secs().to_be_bytes());
        b[9..13].copy_from_slice(&self.delay.subsec_nanos().to_be_bytes());
        b[13..17].copy_from_slice(&self.grace_ms.to_be_bytes());
        b
    }
}

/// The cancel message.
pub const CANCEL: [u8; 1] = [b'c'];

/// One decoded message from the fifo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Cancel,
    /// An unknown command byte: warned about and skipped, as s6-linux-init does.
    Unknown(u8),
}

/// Incremental decoder: the fifo may deliver a request in pieces.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Next complete message, if any.
    pub fn next_message(&mut self) -> Option<Message> {
        let first = *self.buf.first()?;
        if first == b'c' {
            self.buf.remove(0);
            return Some(Message::Cancel);
        }
        let Some(action) = Action::from_byte(first) else {
            self.buf.remove(0);
            return Some(Message::Unknown(first));
        };
        if self.buf.len() < REQUEST_LEN {
            return None;
        }
        let b: Vec<u8> = self.buf.drain(..REQUEST_LEN).collect();
        let secs = u64::from_be_bytes(b[1..9].try_into().unwrap_or([0; 8]));
        let nanos = u32::from_be_bytes(b[9..13].try_into().unwrap_or([0; 4])).min(999_999_999);
        let grace_ms = u32::from_be_bytes(b[13..17].try_into().unwrap_or([0; 4]));
        // TAI64 labels carry a 2^62 offset for absolute times; a relative delay never does,
        // but clamp absurd values so a garbage request cannot overflow the deadline arithmetic.
        let secs = secs.min(u32::MAX as u64);
        Some(Message::Request(Request { action, delay: Duration::new(secs, nanos), grace_ms }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn reboot_now_is_r_and_16_zeros() {
        let b = Request::now(Action::Reboot).encode();
        assert_eq!(hex(&b), "72 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
        assert_eq!(Request::now(Action::Poweroff).encode()[0], 0x70);
        assert_eq!(Request::now(Action::Stop).encode()[0], 0x53);
    }

    #[test]
    fn shutdown_h_t10_plus5_matches_s6_capture() {
        // s6-spec.md E.19: `shutdown -h -t 10 +5`
        let r = Request { action: Action::Halt, delay: Duration::from_secs(300), grace_ms: 10_000 };
        assert_eq!(hex(&r.encode()), "68 00 00 00 00 00 00 01 2c 00 00 00 00 00 00 27 10");
    }

    #[test]
    fn decodes_the_s6_capture() {
        // s6-spec.md E.19, captured from s6-linux-init-shutdown 1.2.0.2: `shutdown -h -t 10 +5`
        let bytes = [
            0x68, 0, 0, 0, 0, 0, 0, 0x01, 0x2c, 0, 0, 0, 0, 0, 0, 0x27, 0x10,
        ];
        let mut d = Decoder::new();
        d.push(&bytes);
        assert_eq!(
            d.next_message(),
            Some(Message::Request(Request { action: Action::Halt, delay: Duration::from_secs(300), grace_ms: 10_000 }))
        );
        assert_eq!(d.next_message(), None);
        // `shutdown -c`: the single byte 63.
        d.push(&[0x63]);
        assert_eq!(d.next_message(), Some(Message::Cancel));
        assert_eq!(CANCEL, [0x63]);
        // `shutdown now`: S and 16 zeros.
        d.push(&[0x53; 1]);
        d.push(&[0; 16]);
        assert_eq!(d.next_message(), Some(Message::Request(Request::now(Action::Stop))));
    }

    #[test]
    fn decoder_handles_pieces_cancel_and_garbage() {
        let mut d = Decoder::new();
        let r = Request { action: Action::Reboot, delay: Duration::new(5, 7), grace_ms: 42 };
        let bytes = r.encode();
        d.push(&bytes[..5]);
        assert_eq!(d.next_message(), None);
        d.push(&bytes[5..]);
        d.push(b"cx");
        assert_eq!(d.next_message(), Some(Message::Request(r)));
        assert_eq!(d.next_message(), Some(Message::Cancel));
        assert_eq!(d.next_message(), Some(Message::Unknown(b'x')));
        assert_eq!(d.next_message(), None);
    }

    /// Every message `d` has, after `bytes`.
    fn drain(d: &mut Decoder, bytes: &[u8]) -> Vec<Message> {
        d.push(bytes);
        std::iter::from_fn(|| d.next_message()).collect()
    }

    #[test]
    fn decoder_never_panics_on_random_bytes() {
        // xorshift64, advanced for every draw (length, cut, each byte): 1965 distinct inputs
        // of 2000 (a length of 0 or 1 repeats). It once advanced only per byte: from the
        // first empty input on every input was empty, 121 distinct in 2000.
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut seen = std::collections::HashSet::new();
        let mut requests = 0;
        for _ in 0..2000 {
            let n = (next() % 64) as usize;
            // One byte in four from the protocol's alphabet, so requests decode too.
            let v: Vec<u8> = (0..n)
                .map(|_| match next() {
                    r if r % 4 == 0 => b"hprSc"[(r >> 8) as usize % 5],
                    r => (r >> 8) as u8,
                })
                .collect();
            let cut = (next() % (n as u64 + 1)) as usize;
            let mut whole = Decoder::new();
            let all = drain(&mut whole, &v);
            // The fifo may cut the bytes anywhere: the same messages either way.
            let mut pieces = Decoder::new();
            let mut got = drain(&mut pieces, &v[..cut]);
            got.extend(drain(&mut pieces, &v[cut..]));
            assert_eq!(got, all, "{v:?} cut at {cut}");
            // All is consumed but an incomplete request at the end.
            assert!(whole.buf.is_empty() || (whole.buf.len() < REQUEST_LEN && Action::from_byte(whole.buf[0]).is_some()), "{v:?}");
            assert_eq!(whole.buf, pieces.buf);
            requests += all.iter().filter(|m| matches!(m, Message::Request(_))).count();
            seen.insert(v);
        }
        assert!(seen.len() >= 1900, "only {} distinct inputs in 2000", seen.len());
        assert!(requests >= 100, "only {requests} requests decoded");
    }
}
