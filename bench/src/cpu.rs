//! CPU time of processes from `/proc`: the benchmarks' cost per unit of work (Linux only).

use std::process::Command;

/// CPU seconds per clock tick of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux).
fn tick_secs() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .map_or(0.01, |t| 1.0 / t)
}

/// `(comm, ppid, utime + stime, cutime + cstime)` of a process, in ticks.
fn stat(pid: u32) -> Option<(String, u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let f: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // after the command: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17)
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((comm, n(1)? as u32, n(11)? + n(12)?, n(13)? + n(14)?))
}

/// CPU seconds used so far by the processes `pids`.
pub fn of(pids: &[u32]) -> f64 {
    let t = tick_secs();
    pids.iter()
        .filter_map(|p| stat(*p))
        .map(|(_, _, own, _)| own as f64 * t)
        .sum()
}

/// CPU seconds used so far by the local Postgres server: every `postgres` process, plus what
/// its ended backends left in the postmaster's children's time.
pub fn postgres() -> f64 {
    let t = tick_secs();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let procs: Vec<(u32, (String, u32, u64, u64))> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, s)| s.0 == "postgres")
        .collect();
    let pg: std::collections::HashSet<u32> = procs.iter().map(|(p, _)| *p).collect();
    procs
        .iter()
        .map(|(_, (_, ppid, own, children))| {
            let postmaster = !pg.contains(ppid);
            (own + if postmaster { *children } else { 0 }) as f64 * t
        })
        .sum()
}
