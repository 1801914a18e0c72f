//! CPU use of processes over a measurement, from `/proc/<pid>/stat` (Linux; elsewhere
//! nothing is reported). On a machine where the server, Redis and this client share two
//! cores, who used the CPU says what bounds a figure.

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading: a process's label and its user + system CPU time, ticks.
pub type Sample = Vec<(String, u64)>;

/// `utime + stime` of the process whose `/proc/<pid>/stat` text is `stat`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: fields are counted
    // from the last `)`, where field 3 (`state`) starts.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, i.e. 12 and 13 after `state`.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A label for `pid`: its command name and id (`ticket-server/1234`).
fn label(pid: &str) -> String {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    if pid == "self" {
        "this client".to_owned()
    } else {
        format!("{name}/{pid}")
    }
}

/// Reads the CPU time of this process and of each of `pids` (missing ones are skipped).
pub fn sample(pids: &[u32]) -> Sample {
    std::iter::once("self".to_owned())
        .chain(pids.iter().map(u32::to_string))
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((label(&pid), cpu_ticks(&stat)?))
        })
        .collect()
}

/// Cores used by each process between two samples `over` apart (1.0: one core all along).
pub fn cores_used(before: &Sample, after: &Sample, over: Duration) -> BTreeMap<String, f64> {
    let secs = over.as_secs_f64();
    after
        .iter()
        .filter_map(|(name, end)| {
            let (_, start) = before.iter().find(|(n, _)| n == name)?;
            let used = end.checked_sub(*start)? as f64 / TICKS_PER_SEC;
            (secs > 0.0).then(|| (name.clone(), used / secs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_the_command_name_even_with_spaces() {
        let stat = "1234 (tokio rt (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn cores_are_ticks_over_wall_time() {
        let before = vec![("a".to_owned(), 100), ("b".to_owned(), 0)];
        let after = vec![("a".to_owned(), 300), ("c".to_owned(), 50)];
        let used = cores_used(&before, &after, Duration::from_secs(2));
        assert_eq!(used.len(), 1, "only processes seen twice");
        assert!((used["a"] - 1.0).abs() < 1e-9);
    }
}
