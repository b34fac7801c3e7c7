//! The kernel's trace of a bench boot, read from the console (`KISS-S6-TRACE:` lines that
//! guest/bench-trace copies out once the logins are ready), and what is measured from it.
//!
//! Events, started by the kernel command line ([`kernel_args`]): `sched_process_fork`,
//! `sched_process_exec`, `sched_process_exit` (the process tree and every exec); a kprobe
//! on `n_tty_read` (a getty is ready when it first reads its terminal); with `--trace`
//! also `sched_switch` (each process's CPU time: the guest has one CPU, so the time from
//! one switch to the next belongs to the process switched in) and a kprobe on
//! `__x64_sys_execve` that fetches the filename and argv[0..9] from user memory (which
//! service a process works for: `s6-supervise NAME`, `s6-rc-oneshot-run up N`, …).
//! Times are the trace clock `global` (`trace_clock=global`): the clock of printk's
//! timestamps, so the kernel log's marks (rc.boot's `log`) fall where they belong.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The kernel command line words that start the trace at boot; `full` adds the
/// scheduler's switches and the execve argv probe (`--trace`).
pub fn kernel_args(full: bool) -> String {
    let mut events = String::from("sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit");
    let mut probes = String::from("p:ttyrd,n_tty_read");
    if full {
        events.push_str(",sched:sched_switch");
        // __x64_sys_execve(struct pt_regs *regs): regs->di (+112) is the filename,
        // regs->si (+104) argv, both user pointers.
        let mut p = String::from("p:kexec,__x64_sys_execve,f=+0(+112(%di)):ustring");
        for i in 0..10 {
            let _ = write!(p, ",a{i}=+0(+u{}(+104(%di))):ustring", i * 8);
        }
        probes = format!("{p};{probes}");
    }
    let size = if full { 32 } else { 4 };
    format!("trace_event={events} kprobe_event={probes} trace_buf_size={size}M trace_clock=global kiss_s6_bench=trace")
}

pub struct Exec {
    pub at: f64,
    pub file: String,
    /// argv[0..10] when the execve probe ran (`--trace`), else empty.
    pub argv: Vec<String>,
}

pub struct Proc {
    pub pid: u32,
    pub parent: Option<usize>,
    pub forked: Option<f64>,
    pub execs: Vec<Exec>,
    pub exited: Option<f64>,
    /// Its first read of a terminal (n_tty_read).
    pub tty_read: Option<f64>,
    /// (from, to): when it ran (sched_switch, `--trace` only).
    pub slices: Vec<(f64, f64)>,
}

impl Proc {
    fn new(pid: u32, parent: Option<usize>, forked: Option<f64>) -> Proc {
        Proc { pid, parent, forked, execs: vec![], exited: None, tty_read: None, slices: vec![] }
    }

    /// CPU time between `a` and `b`.
    pub fn cpu(&self, a: f64, b: f64) -> f64 {
        self.slices.iter().map(|&(x, y)| (y.min(b) - x.max(a)).max(0.0)).sum()
    }
}

#[derive(Default)]
pub struct Trace {
    pub procs: Vec<Proc>,
    /// sched_switch events seen (0: no CPU times).
    pub switches: usize,
    /// When the CPU was idle (pid 0 ran).
    pub idle: Vec<(f64, f64)>,
    pub lines: usize,
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `key=value` among blank-separated words.
fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The kexec probe's `f="…" a0="…" … a9=(fault)`: the filename and argv up to the
/// first value that could not be read (argv's NULL).
fn probe_argv(s: &str) -> (Option<String>, Vec<String>) {
    let keys: Vec<String> = std::iter::once("f".to_string()).chain((0..10).map(|i| format!("a{i}"))).collect();
    let mut at: Vec<(usize, usize)> = Vec::new(); // (start of the value, start of the marker)
    let mut from = 0;
    for k in &keys {
        let m = format!(" {k}=");
        let Some(i) = s[from..].find(&m).map(|i| i + from) else { break };
        at.push((i + m.len(), i));
        from = i + m.len();
    }
    let vals: Vec<Option<String>> = at
        .iter()
        .enumerate()
        .map(|(n, &(v, _))| {
            let end = at.get(n + 1).map(|&(_, m)| m).unwrap_or(s.len());
            let raw = &s[v..end];
            raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).map(str::to_string)
        })
        .collect();
    let file = vals.first().cloned().flatten();
    let argv = vals.into_iter().skip(1).map_while(|v| v).collect();
    (file, argv)
}

impl Trace {
    pub fn parse(log: &str) -> Trace {
        let mut t = Trace::default();
        let mut now: BTreeMap<u32, usize> = BTreeMap::new();
        let mut pending: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let mut running: Option<(u32, f64)> = None;
        for line in log.lines() {
            let Some((_, l)) = line.split_once("KISS-S6-TRACE: ") else { continue };
            let l = l.trim_end_matches('\r');
            let Some((head, rest)) = l.split_once(": ") else { continue };
            let Some((task, ts)) = head.trim().rsplit_once(' ') else { continue };
            let (Ok(ts), Some(Ok(pid))) = (ts.parse::<f64>(), task.rsplit_once('-').map(|(_, p)| p.parse::<u32>())) else { continue };
            let (event, fields) = rest.split_once(": ").unwrap_or((rest, ""));
            t.lines += 1;
            let mut idx = |t: &mut Trace, pid: u32| -> usize {
                *now.entry(pid).or_insert_with(|| {
                    t.procs.push(Proc::new(pid, None, None));
                    t.procs.len() - 1
                })
            };
            match event {
                "sched_process_fork" => {
                    let Some(Ok(child)) = field(fields, "child_pid").map(str::parse::<u32>) else { continue };
                    let parent = field(fields, "pid").and_then(|p| p.parse::<u32>().ok()).map(|p| idx(&mut t, p));
                    t.procs.push(Proc::new(child, parent, Some(ts)));
                    now.insert(child, t.procs.len() - 1);
                }
                "sched_process_exec" => {
                    let file = fields.strip_prefix("filename=").and_then(|f| f.rsplit_once(" pid=")).map(|(f, _)| f.to_string()).unwrap_or_default();
                    let i = idx(&mut t, pid);
                    let argv = pending.remove(&pid).unwrap_or_default();
                    t.procs[i].execs.push(Exec { at: ts, file, argv });
                }
                "sched_process_exit" => {
                    let i = idx(&mut t, pid);
                    t.procs[i].exited = Some(ts);
                }
                "kexec" => {
                    // The last attempt before the exec succeeds is the one that did (a PATH
                    // search tries several files with the same argv).
                    pending.insert(pid, probe_argv(fields).1);
                }
                "ttyrd" => {
                    let i = idx(&mut t, pid);
                    t.procs[i].tty_read.get_or_insert(ts);
                }
                "sched_switch" => {
                    let (Some(Ok(prev)), Some(Ok(next))) = (field(fields, "prev_pid").map(str::parse::<u32>), field(fields, "next_pid").map(str::parse::<u32>)) else { continue };
                    t.switches += 1;
                    let from = match running {
                        Some((p, since)) if p == prev => since,
                        // The first switch: its process ran since the trace began (unknown).
                        _ => ts,
                    };
                    if prev == 0 {
                        t.idle.push((from, ts));
                    } else {
                        let i = idx(&mut t, prev);
                        t.procs[i].slices.push((from, ts));
                    }
                    running = Some((next, ts));
                }
                _ => {}
            }
        }
        t
    }

    fn find_exec(&self, f: impl Fn(&Exec) -> bool) -> Option<(usize, &Exec)> {
        self.procs.iter().enumerate().flat_map(|(i, p)| p.execs.iter().map(move |e| (i, e))).filter(|(_, e)| f(e)).min_by(|a, b| a.1.at.total_cmp(&b.1.at))
    }

    /// The kernel's exec of pid 1: where every measure starts.
    pub fn init_exec(&self) -> Option<f64> {
        self.procs.iter().find(|p| p.pid == 1 && p.parent.map(|q| self.procs[q].pid) == Some(0)).and_then(|p| p.execs.first()).map(|e| e.at)
    }

    /// Stage 2: the first exec of a `…/rc.init` (kiss-s6, s6-linux-init) or `…/rc.boot`
    /// (KISS): (proc, its exec).
    pub fn stage2(&self) -> Option<(usize, f64)> {
        self.find_exec(|e| e.file.ends_with("/rc.init") || e.file.ends_with("/rc.boot")).map(|(i, e)| (i, e.at))
    }

    /// The measurement itself (the test report, bench-kiss) and everything it started.
    pub fn measurement(&self) -> Vec<bool> {
        let own = |p: &Proc| p.execs.iter().any(|e| ["/kiss-s6-test/report", "/kiss-s6-test/bench-kiss", "/kiss-s6-test/bench-trace"].iter().any(|s| e.file.ends_with(s)));
        let mut m: Vec<bool> = self.procs.iter().map(own).collect();
        // Parents come before children in `procs` (a fork adds the child after its parent).
        for i in 0..self.procs.len() {
            if let Some(p) = self.procs[i].parent {
                m[i] |= m[p];
            }
        }
        m
    }

    /// The pid's proc (the last one of that pid).
    pub fn by_pid(&self, pid: u32) -> Option<usize> {
        self.procs.iter().rposition(|p| p.pid == pid)
    }

    /// Execs in [a, b], the measurement's left out.
    pub fn execs_between(&self, a: f64, b: f64) -> usize {
        let m = self.measurement();
        self.procs.iter().enumerate().filter(|(i, _)| !m[*i]).map(|(_, p)| p.execs.iter().filter(|e| e.at >= a && e.at <= b).count()).sum()
    }
}

/// One getty the guest found ready: (pid, its terminal).
pub fn gettys(report: &[(String, String)]) -> Vec<(u32, String)> {
    report
        .iter()
        .filter(|(k, _)| k == "getty")
        .filter_map(|(_, v)| {
            let mut w = v.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.to_string()))
        })
        .collect()
}

/// What one boot measures, from its trace and its report (seconds from the exec of init).
pub struct Marks {
    /// Boot work done: stage 2 ended and every getty is ready.
    pub done: f64,
    /// The getty on /dev/tty1 is ready.
    pub tty1: Option<f64>,
    /// The init's own part: → the exec of rc.init / rc.boot.
    pub init_part: Option<f64>,
    /// Execs from init's exec to `done` (the measurement's left out).
    pub execs: usize,
    /// Absolute trace times: init's exec, stage 2's exit, boot work done.
    pub t0: f64,
    pub t_s2end: f64,
    pub t_done: f64,
}

pub fn marks(t: &Trace, report: &[(String, String)]) -> Result<Marks, String> {
    let t0 = t.init_exec().ok_or("no exec of pid 1 in the trace")?;
    let (s2, s2_at) = t.stage2().ok_or("no exec of rc.init or rc.boot in the trace")?;
    let s2_end = t.procs[s2].exited.ok_or("stage 2 (rc.init / rc.boot) had not exited when the trace stopped")?;
    let g = gettys(report);
    if g.is_empty() {
        return Err("the guest found no getty".into());
    }
    let mut done = s2_end;
    let mut tty1 = None;
    for (pid, tty) in &g {
        let at = t.by_pid(*pid).and_then(|i| t.procs[i].tty_read).ok_or(format!("getty {pid} ({tty}) never read its terminal in the trace"))?;
        done = done.max(at);
        if tty == "/dev/tty1" {
            tty1 = Some(at - t0);
        }
    }
    Ok(Marks { done: done - t0, tty1, init_part: Some(s2_at - t0), execs: t.execs_between(t0, done), t0, t_s2end: s2_end, t_done: done })
}

/// Which of the system's parts a process works for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Measure,
    Named(String),
}

/// s6-rc's oneshot numbers: (number of longruns, oneshots in number order), from the
/// report's `s6rc-longruns` and `s6rc-oneshots`.
pub fn oneshots(report: &[(String, String)]) -> Option<(usize, Vec<String>)> {
    let v = |k: &str| report.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    Some((v("s6rc-longruns")?.trim().parse().ok()?, v("s6rc-oneshots")?.split_whitespace().map(str::to_string).collect()))
}

/// The service an exec names: `s6-rc-oneshot-run … up N` and the s6-sudo client that asks
/// for it (oneshot N), `s6-supervise NAME`, an s6-svc/s6-svlisten1 on
/// `…/servicedirs/NAME` (s6-rc starting longrun NAME).
fn service_of(e: &Exec, shots: &Option<(usize, Vec<String>)>) -> Option<String> {
    let b = base(&e.file);
    if ["s6-rc-oneshot-run", "s6-sudo", "s6-sudoc", "s6-ipcclient"].contains(&b) {
        let n = e.argv.windows(2).find(|w| w[0] == "up" || w[0] == "down").and_then(|w| w[1].parse::<usize>().ok())?;
        let dir = e.argv.windows(2).find(|w| w[0] == "up" || w[0] == "down").map(|w| w[0].clone()).unwrap_or_default();
        let name = shots.as_ref().and_then(|(nlong, names)| names.get(n.checked_sub(*nlong)?).cloned()).unwrap_or_else(|| format!("#{n}"));
        return Some(if dir == "down" { format!("{name} (down)") } else { name });
    }
    if b == "s6-supervise" {
        return e.argv.get(1).map(|n| n.trim_end_matches('/').rsplit('/').next().unwrap_or(n).to_string());
    }
    e.argv.iter().find_map(|a| a.split_once("/servicedirs/").map(|(_, n)| n.split('/').next().unwrap_or(n).to_string()))
}

/// How a program is named in the commands table: a multi-call binary by its applet or
/// subcommand (busybox's shell runs its applets as /proc/self/exe).
pub fn command(e: &Exec) -> String {
    let b = base(&e.file);
    let arg0 = e.argv.first().map(|a| base(a).to_string());
    match b {
        "exe" | "busybox" => match (arg0.as_deref(), e.argv.get(1)) {
            (Some("busybox") | None, Some(a)) => format!("busybox {a}"),
            (Some(a), _) => format!("busybox {a}"),
            _ => "busybox".into(),
        },
        "kiss-s6" => format!("kiss-s6 {}", e.argv.get(1).map(String::as_str).unwrap_or("")).trim_end().to_string(),
        _ => e.file.clone(),
    }
}

/// The commands table's row of the CPU a process spends before its first exec.
pub const FORKED: &str = "(forked, before its first exec; the exec's loading)";

/// One part of the boot: a service, rc.init, a step of rc.boot, …
pub struct Step {
    pub name: String,
    pub cpu: f64,
    /// Of which until stage 2 (rc.init / rc.boot) exited.
    pub cpu_s2: f64,
    pub execs: usize,
    pub procs: usize,
}

/// The per-part breakdown of the boot window [t0, t_done]: CPU time (when `switches`),
/// execs and processes of each part, the idle time, and the commands run (count, CPU).
pub struct Breakdown {
    pub steps: Vec<Step>,
    pub idle: f64,
    /// Of which until stage 2 exited.
    pub idle_s2: f64,
    pub commands: Vec<(String, usize, f64)>,
    /// One line per process: the listing written to target/bench-trace.txt.
    pub listing: String,
}

/// `kmsg` marks (time, message) of rc.boot's `log` (KISS): its steps.
pub fn kmsg(report: &[(String, String)]) -> Vec<(f64, String)> {
    report
        .iter()
        .filter(|(k, _)| k == "kmsg")
        .filter_map(|(_, v)| {
            let (ts, msg) = v.split_once(' ')?;
            Some((ts.parse().ok()?, msg.trim_start_matches("init: ").to_string()))
        })
        .collect()
}

pub fn breakdown(t: &Trace, m: &Marks, report: &[(String, String)]) -> Breakdown {
    let (a, b, s2) = (m.t0, m.t_done, m.t_s2end);
    let shots = oneshots(report);
    let measure = t.measurement();
    let stage2 = t.stage2().map(|(i, _)| i);
    let kiss = t.procs.iter().any(|p| p.execs.iter().any(|e| e.file.ends_with("/rc.boot")));
    // rc.boot's steps: from its exec to the first mark (before /dev/kmsg exists), then
    // from each mark to the next.
    let mut marks: Vec<(f64, String)> = kmsg(report).into_iter().filter(|(ts, _)| *ts >= a && *ts <= b).collect();
    if kiss {
        if let Some((_, at)) = t.stage2() {
            marks.insert(0, (at, "Welcome to KISS! / Mounting pseudo filesystems...".into()));
        }
    }
    let step_at = |ts: f64| -> String {
        let s = marks.iter().rev().find(|(at, _)| *at <= ts).or(marks.first()).map(|(_, s)| s.as_str()).unwrap_or("?");
        format!("rc.boot: {s}")
    };
    // Each process's own label, from its execs.
    let own: Vec<Option<Label>> = t
        .procs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if measure[i] {
                return Some(Label::Measure);
            }
            for e in &p.execs {
                if let Some(s) = service_of(e, &shots) {
                    return Some(Label::Named(s));
                }
                if base(&e.file) == "s6-rc" {
                    return Some(Label::Named("s6-rc (the change engine)".into()));
                }
            }
            if Some(i) == stage2 {
                return Some(Label::Named(if kiss { "rc.boot".into() } else { "rc.init".into() }));
            }
            None
        })
        .collect();
    // s6-ipcserverd's children (s6-ipcserver-access → s6-sudod) work for the oneshot
    // their child runs.
    let server = |p: &Proc| !p.execs.is_empty() && p.execs.iter().all(|e| ["s6-ipcserver-access", "s6-sudod"].contains(&base(&e.file)));
    let own: Vec<Option<Label>> = t
        .procs
        .iter()
        .enumerate()
        .map(|(i, p)| match &own[i] {
            None if server(p) => t.procs.iter().position(|c| c.parent == Some(i)).and_then(|c| own[c].clone()),
            l => l.clone(),
        })
        .collect();
    // Effective: its own label, else its parent's (parents come first in `procs`); pid
    // 1's children by what they run; what has no parent (pid 0, so kthreadd and the
    // kernel's helpers below it) is the kernel.
    let mut label: Vec<Label> = Vec::with_capacity(t.procs.len());
    for (i, p) in t.procs.iter().enumerate() {
        let l = match (&own[i], p.parent) {
            (Some(l), _) => l.clone(),
            _ if p.pid == 1 => Label::Named("pid 1".into()),
            (None, Some(q)) => match &label[q] {
                Label::Named(n) if n == "pid 1" && !p.execs.is_empty() => {
                    let e = p.execs.last().map(command).unwrap_or_default();
                    let tty = p.execs.last().and_then(|e| e.argv.iter().find(|a| a.starts_with("tty")).cloned());
                    Label::Named(format!("pid 1's child: {e}{}", tty.map(|t| format!(" {t}")).unwrap_or_default()))
                }
                Label::Named(n) if n == "rc.boot" => Label::Named(step_at(p.forked.unwrap_or(a))),
                l => l.clone(),
            },
            (None, None) => Label::Named("kernel".into()),
        };
        label.push(l);
    }
    let pid1_name = t.procs.iter().find(|p| p.pid == 1).map(|p| p.execs.iter().map(|e| base(&e.file).to_string()).collect::<Vec<_>>().join(" → ")).unwrap_or_default();
    let mut steps: BTreeMap<String, Step> = BTreeMap::new();
    let mut commands: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut listing = String::new();
    for (i, p) in t.procs.iter().enumerate() {
        if label[i] == Label::Measure {
            continue;
        }
        let Label::Named(name) = &label[i] else { continue };
        let name = if name == "pid 1" { format!("pid 1 ({pid1_name})") } else { name.clone() };
        // rc.boot's shell itself: its CPU split at the marks.
        let parts: Vec<(String, f64, f64)> = if Some(i) == stage2 && kiss {
            let mut v = Vec::new();
            for (n, (at, _)) in marks.iter().enumerate() {
                let end = marks.get(n + 1).map(|m| m.0).unwrap_or(b);
                v.push((step_at(*at), p.cpu(*at, end), p.cpu(*at, end.min(s2))));
            }
            v
        } else {
            vec![(name.clone(), p.cpu(a, b), p.cpu(a, s2))]
        };
        let execs = p.execs.iter().filter(|e| e.at >= a && e.at <= b).count();
        let alive = p.forked.unwrap_or(a) <= b && p.exited.unwrap_or(b) >= a;
        for (n, (s, cpu, cpu_s2)) in parts.iter().enumerate() {
            let st = steps.entry(s.clone()).or_insert_with(|| Step { name: s.clone(), cpu: 0.0, cpu_s2: 0.0, execs: 0, procs: 0 });
            st.cpu += cpu;
            st.cpu_s2 += cpu_s2;
            if n == 0 {
                st.execs += execs;
                st.procs += usize::from(alive);
            }
        }
        // Each exec's CPU: from it to the next exec or the end; before the first one, the
        // forked child (and the exec's own loading) runs.
        let first = p.execs.first().map(|e| e.at).unwrap_or(b);
        let pre = p.cpu(a, first);
        if pre > 0.0 {
            let c = commands.entry(FORKED.into()).or_insert((0, 0.0));
            c.1 += pre;
        }
        for (n, e) in p.execs.iter().enumerate() {
            if e.at < a || e.at > b {
                continue;
            }
            let end = p.execs.get(n + 1).map(|x| x.at).unwrap_or(b);
            let c = commands.entry(command(e)).or_insert((0, 0.0));
            c.0 += 1;
            c.1 += p.cpu(e.at, end);
        }
        if alive && (execs > 0 || p.cpu(a, b) > 0.0) {
            let chain: Vec<String> = p.execs.iter().map(|e| if e.argv.is_empty() { e.file.clone() } else { e.argv.join(" ") }).collect();
            let _ = writeln!(
                listing,
                "{:<36} pid {:>5} fork {:>8} exit {:>8} cpu {:>7.2} ms  {}",
                name,
                p.pid,
                p.forked.map(|f| format!("{:.4}", f - a)).unwrap_or_else(|| "-".into()),
                p.exited.map(|f| format!("{:.4}", f - a)).unwrap_or_else(|| "-".into()),
                p.cpu(a, b) * 1000.0,
                chain.join("  ⇒  ")
            );
        }
    }
    let idle_in = |b: f64| t.idle.iter().map(|&(x, y)| (y.min(b) - x.max(a)).max(0.0)).sum();
    let (idle, idle_s2) = (idle_in(b), idle_in(s2));
    let mut steps: Vec<Step> = steps.into_values().collect();
    steps.sort_by(|x, y| y.cpu.total_cmp(&x.cpu).then(y.execs.cmp(&x.execs)));
    let mut commands: Vec<(String, usize, f64)> = commands.into_iter().map(|(k, (n, c))| (k, n, c)).collect();
    commands.sort_by(|x, y| y.2.total_cmp(&x.2).then(y.1.cmp(&x.1)));
    Breakdown { steps, idle, idle_s2, commands, listing }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
KISS-S6-TRACE: swapper/0-0 0.100000: sched_process_fork: comm=swapper/0 pid=0 child_comm=swapper/0 child_pid=1
KISS-S6-TRACE: init-1 1.000000: sched_process_exec: filename=/sbin/init pid=1 old_pid=1
KISS-S6-TRACE: init-1 1.100000: sched_process_fork: comm=init pid=1 child_comm=init child_pid=50
KISS-S6-TRACE: init-50 1.100100: kexec: (__x64_sys_execve+0x0/0x40) f=\"/usr/lib/kiss-s6/rc.init\" a0=\"/usr/lib/kiss-s6/rc.init\" a1=\"default\" a2=(fault) a3=(fault)
KISS-S6-TRACE: rc.init-50 1.100200: sched_process_exec: filename=/usr/lib/kiss-s6/rc.init pid=50 old_pid=50
KISS-S6-TRACE: rc.init-50 1.200000: sched_process_fork: comm=rc.init pid=50 child_comm=rc.init child_pid=51
KISS-S6-TRACE: rc.init-51 1.200100: kexec: (__x64_sys_execve+0x0/0x40) f=\"/usr/bin/s6-sudo\" a0=\"s6-sudo\" a1=\"-el0\" a2=\"--\" a3=\"/run/s6-rc/servicedirs/s6rc-oneshot-runner/s\" a4=\"up\" a5=\"4\" a6=(fault)
KISS-S6-TRACE: s6-sudo-51 1.200200: sched_process_exec: filename=/usr/bin/s6-sudo pid=51 old_pid=51
KISS-S6-TRACE: s6-sudo-51 1.200300: sched_switch: prev_pid=51 prev_state=S ==> next_pid=0
KISS-S6-TRACE: <idle>-0 1.300000: sched_switch: prev_pid=0 prev_state=R ==> next_pid=51
KISS-S6-TRACE: s6-sudo-51 1.300500: sched_switch: prev_pid=51 prev_state=S ==> next_pid=50
KISS-S6-TRACE: s6-sudo-51 1.301000: sched_process_exit: comm=s6-sudo pid=51 prio=120
KISS-S6-TRACE: rc.init-50 1.400000: sched_process_exit: comm=rc.init pid=50 prio=120
KISS-S6-TRACE: init-1 1.400100: sched_process_fork: comm=init pid=1 child_comm=init child_pid=60
KISS-S6-TRACE: getty-60 1.400200: sched_process_exec: filename=/bin/getty pid=60 old_pid=60
KISS-S6-TRACE: getty-60 1.500000: ttyrd: (n_tty_read+0x0/0x660)
KISS-S6-TRACE: getty-60 1.600000: ttyrd: (n_tty_read+0x0/0x660)
";

    fn report() -> Vec<(String, String)> {
        [("getty", "60 /dev/tty1 ready"), ("s6rc-longruns", "3"), ("s6rc-oneshots", "a dev")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_the_probe_argv_up_to_the_first_fault() {
        let (f, argv) = probe_argv(r#"(__x64_sys_execve+0x0/0x40) f="/bin/x" a0="x" a1="a b" a2=(fault) a3="junk""#);
        assert_eq!(f.as_deref(), Some("/bin/x"));
        assert_eq!(argv, ["x", "a b"]);
        assert_eq!(probe_argv("garbage"), (None, vec![]));
    }

    #[test]
    fn measures_the_marks_and_attributes_a_oneshot() {
        let t = Trace::parse(LOG);
        let m = marks(&t, &report()).unwrap();
        assert!((m.done - 0.5).abs() < 1e-9, "{}", m.done);
        assert!((m.tty1.unwrap() - 0.5).abs() < 1e-9);
        assert!((m.init_part.unwrap() - 0.1002).abs() < 1e-9);
        assert_eq!(m.execs, 4);
        let b = breakdown(&t, &m, &report());
        let dev = b.steps.iter().find(|s| s.name == "dev").expect("oneshot 4 is dev");
        assert_eq!((dev.execs, dev.procs), (1, 1));
        assert!((dev.cpu - 0.0005).abs() < 1e-9, "{}", dev.cpu);
        assert!((b.idle - 0.0997).abs() < 1e-9, "{}", b.idle);
        assert!(b.steps.iter().any(|s| s.name.starts_with("pid 1's child: /bin/getty")));
    }

    #[test]
    fn names_multi_call_programs() {
        let e = |f: &str, a: &[&str]| Exec { at: 0.0, file: f.into(), argv: a.iter().map(|s| s.to_string()).collect() };
        assert_eq!(command(&e("/proc/self/exe", &["mount", "-t"])), "busybox mount");
        assert_eq!(command(&e("/usr/bin/kiss-s6", &["/usr/bin/kiss-s6", "mountpoint", "-q"])), "kiss-s6 mountpoint");
        assert_eq!(command(&e("/usr/bin/s6-svc", &[])), "/usr/bin/s6-svc");
    }
}
