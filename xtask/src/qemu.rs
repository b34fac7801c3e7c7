//! QEMU under software emulation (KVM hangs on our machines), serial console to a log file
//! that we tail, the monitor on stdin for ctrl-alt-del. The outcome is read from the serial
//! log, never from QEMU's exit status (0 for panic, reboot and poweroff alike).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

#[derive(Debug, Clone)]
pub struct Vm {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub disk: Option<PathBuf>,
    pub append: String,
    pub log: PathBuf,
    pub timeout: Duration,
    /// Print the console as it comes.
    pub stream: bool,
    /// While streaming, leave out the test report's `KISS-S6-TEST:` lines (what a user
    /// sees on a real console, for `cargo xtask boot`).
    pub hide_report: bool,
    /// When the log shows the first string, send the second to the monitor (once each).
    pub triggers: Vec<(String, String)>,
    /// Interactive: the console on this terminal instead of a log (cargo xtask boot --shell).
    pub interactive: bool,
    /// Guest time counted in instructions, 1 ns each (`-icount shift=0,sleep=off`): a run
    /// gives the same times whatever the host's load (`cargo xtask bench --icount`).
    pub icount: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    PowerDown,
    Restart,
    Halted,
    Panic,
    Timeout,
    /// QEMU exited without any of the above on the console.
    Exited,
}

pub struct Outcome {
    pub end: End,
    pub log: String,
    pub wall: Duration,
}

impl Outcome {
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

fn end_of(log: &str) -> Option<End> {
    if log.contains("Kernel panic") {
        Some(End::Panic)
    } else if log.contains("reboot: Power down") {
        Some(End::PowerDown)
    } else if log.contains("reboot: Restarting system") {
        Some(End::Restart)
    } else if log.contains("reboot: System halted") {
        Some(End::Halted)
    } else {
        None
    }
}

fn command(vm: &Vm) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    let accel = std::env::var("KISS_S6_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    c.args(["-accel", &accel, "-m", "512", "-smp", "1", "-display", "none", "-nodefaults", "-no-reboot"]);
    c.arg("-kernel").arg(&vm.kernel).arg("-initrd").arg(&vm.initrd);
    if let Some(d) = &vm.disk {
        c.arg("-drive").arg(format!("file={},format=raw,if=virtio", d.display()));
    }
    c.arg("-append").arg(&vm.append);
    if vm.icount {
        c.args(["-icount", "shift=0,sleep=off"]);
    }
    if vm.interactive {
        c.args(["-serial", "mon:stdio"]);
    } else {
        c.arg("-serial").arg(format!("file:{}", vm.log.display()));
        c.args(["-monitor", "stdio"]);
        c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    }
    c
}

pub fn run(vm: &Vm) -> Result<Outcome> {
    let start = Instant::now();
    let _ = std::fs::remove_file(&vm.log);
    if vm.interactive {
        command(vm).status()?;
        return Ok(Outcome { end: End::Exited, log: String::new(), wall: start.elapsed() });
    }
    let mut child: Child = command(vm).spawn().map_err(|e| format!("unable to run qemu-system-x86_64: {e}"))?;
    let mut stdin = child.stdin.take();
    let mut fired = vec![false; vm.triggers.len()];
    let mut printed = 0usize;
    let mut log: String;
    let end = loop {
        std::thread::sleep(Duration::from_millis(50));
        log = std::fs::read(&vm.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if vm.stream && log.len() > printed {
            // Whole lines only, so a report line can be recognised and left out.
            let upto = log[printed..].rfind('\n').map(|i| printed + i + 1).unwrap_or(printed);
            let mut out = std::io::stdout();
            for line in log[printed..upto].split_inclusive('\n') {
                if !(vm.hide_report && line.contains("KISS-S6-TEST: ")) {
                    let _ = out.write_all(line.as_bytes());
                }
            }
            let _ = out.flush();
            printed = upto;
        }
        for (i, (marker, monitor_cmd)) in vm.triggers.iter().enumerate() {
            if !fired[i] && log.contains(marker.as_str()) {
                fired[i] = true;
                if let Some(s) = stdin.as_mut() {
                    let _ = writeln!(s, "{monitor_cmd}");
                    let _ = s.flush();
                }
            }
        }
        if let Some(e) = end_of(&log) {
            // A halted machine keeps running: stop it. Others exit by themselves.
            if e == End::Halted || e == End::Panic {
                let _ = child.kill();
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            break e;
        }
        if let Ok(Some(_)) = child.try_wait() {
            log = std::fs::read(&vm.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            break end_of(&log).unwrap_or(End::Exited);
        }
        if start.elapsed() > vm.timeout {
            let _ = child.kill();
            break End::Timeout;
        }
    };
    let _ = child.wait();
    Ok(Outcome { end, log, wall: start.elapsed() })
}

/// `KISS-S6-TEST: KEY rest` lines from a console log: (KEY, rest).
pub fn report(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| l.split_once("KISS-S6-TEST: ").map(|(_, r)| r.trim_end_matches('\r')))
        .map(|r| match r.split_once(' ') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (r.to_string(), String::new()),
        })
        .collect()
}
