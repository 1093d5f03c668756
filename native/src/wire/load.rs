//! Open-loop load generation, natively: the schedule and the reply matching of `cift-load`
//! (`perf.tcp --client native`).
//!
//! Command i of a stream is planned at `i * interval` after the start, whatever happened before
//! (open loop: no coordinated omission). Its latency runs from that planned time to the arrival
//! of the first report whose `cmdSeq` is its sequence number: the engine gives consecutive
//! sequence numbers to one session's accepted commands (the stream must be accepted in full:
//! one account, valid commands), so the first report's `cmdSeq` is the base and command i is
//! `base + i`. A report for a later command also answers every earlier one still waiting (one
//! whose reports were lost would be counted then, which can only make figures larger). This is
//! the same rule as
//! the Python load generator's, so both measure the same thing; here nothing but the kernel
//! sits between the socket and the clock.

use super::client::{ReportKind, REPORT_SIZE};

/// When each command is due: `due(t)` = how many commands must have been sent by `t` ns.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    interval_ns: f64,
    total: usize,
}

impl Schedule {
    /// `rate` commands per second, `total` commands.
    pub fn new(rate: f64, total: usize) -> Schedule {
        Schedule {
            interval_ns: 1e9 / rate.max(1e-9),
            total,
        }
    }

    /// Planned send time of command `i`, ns after the start.
    pub fn planned(&self, i: usize) -> u64 {
        (i as f64 * self.interval_ns) as u64
    }

    /// Commands due by `t_ns` after the start (command 0 is due at once).
    pub fn due(&self, t_ns: u64) -> usize {
        let n = (t_ns as f64 / self.interval_ns) as usize + 1;
        n.min(self.total)
    }
}

/// Matches reports to commands and records each command's latency (after the warm-up ones).
#[derive(Debug)]
pub struct Matcher {
    schedule: Schedule,
    warmup: usize,
    base: u64,
    next: usize,
    logged_on: bool,
    latencies: Vec<u64>,
}

impl Matcher {
    pub fn new(schedule: Schedule, warmup: usize) -> Matcher {
        Matcher {
            schedule,
            warmup,
            base: 0,
            next: 0,
            logged_on: false,
            latencies: Vec::with_capacity(schedule.total.saturating_sub(warmup)),
        }
    }

    /// A logon ack has been seen.
    pub fn logged_on(&self) -> bool {
        self.logged_on
    }

    /// Every command has its first report.
    pub fn done(&self) -> bool {
        self.next >= self.schedule.total
    }

    /// Commands answered so far.
    pub fn answered(&self) -> usize {
        self.next
    }

    /// Latencies (ns) of the measured commands, in command order.
    pub fn latencies(&self) -> &[u64] {
        &self.latencies
    }

    /// Take decoded report records (`decode_replies`) that arrived at `now_ns` after the start.
    pub fn on_reports(&mut self, records: &[u8], now_ns: u64) {
        for r in records.chunks_exact(REPORT_SIZE) {
            if r.first() == Some(&(ReportKind::LogonAck as u8)) {
                self.logged_on = true;
                continue;
            }
            let cmd_seq = r
                .get(56..64)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes);
            if cmd_seq == 0 {
                continue;
            }
            if self.base == 0 {
                self.base = cmd_seq;
            }
            let Some(i) = cmd_seq.checked_sub(self.base) else {
                continue;
            };
            let i = usize::try_from(i).unwrap_or(usize::MAX);
            while self.next <= i && self.next < self.schedule.total {
                if self.next >= self.warmup {
                    let planned = self.schedule.planned(self.next);
                    self.latencies.push(now_ns.saturating_sub(planned).max(1));
                }
                self.next += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: ReportKind, cmd_seq: u64) -> Vec<u8> {
        let mut r = vec![0u8; REPORT_SIZE];
        r[0] = kind as u8;
        r[56..64].copy_from_slice(&cmd_seq.to_le_bytes());
        r
    }

    #[test]
    fn the_schedule_is_open_loop() {
        let s = Schedule::new(1000.0, 10);
        assert_eq!(s.planned(3), 3_000_000);
        assert_eq!(s.due(0), 1);
        assert_eq!(s.due(2_999_999), 3);
        assert_eq!(s.due(3_000_000), 4);
        assert_eq!(s.due(u64::MAX / 2), 10);
    }

    #[test]
    fn latency_runs_from_the_planned_time_to_the_first_report() {
        let s = Schedule::new(1000.0, 4); // commands planned at 0, 1, 2, 3 ms
        let mut m = Matcher::new(s, 1);
        m.on_reports(&report(ReportKind::LogonAck, 0), 0);
        assert!(m.logged_on());
        // command 0 (seq 50): warm-up, not measured; its fill (same cmd_seq) does not count twice
        let mut batch = report(ReportKind::Ack, 50);
        batch.extend(report(ReportKind::Fill, 50));
        m.on_reports(&batch, 100);
        assert_eq!((m.answered(), m.latencies()), (1, &[][..]));
        m.on_reports(&report(ReportKind::Ack, 51), 1_000_400);
        assert_eq!(m.latencies(), &[400]);
        // no report for command 2: command 3's answers both
        m.on_reports(&report(ReportKind::Ack, 53), 3_000_900);
        assert_eq!(m.latencies(), &[400, 1_000_900, 900]);
        assert!(m.done());
    }

    #[test]
    fn reports_before_the_base_or_without_a_command_are_ignored() {
        let mut m = Matcher::new(Schedule::new(1000.0, 3), 0);
        m.on_reports(&report(ReportKind::Heartbeat, 0), 5);
        m.on_reports(&report(ReportKind::Ack, 10), 5);
        m.on_reports(&report(ReportKind::Ack, 9), 6);
        assert_eq!(m.answered(), 1);
        assert_eq!(m.latencies(), &[5]);
    }
}
