//! CPU time spent by the server, the database and the load generator, from `/proc`: on a
//! shared two-core machine, CPU per message is a steadier figure than wall-clock rates, and it
//! shows which of the three a scenario is bound by.

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// User + system CPU seconds of a process; with `reaped_children`, also of its children that
/// exited (Postgres backends that closed their connections).
fn seconds(pid: &str, reaped_children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3, "state".
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let mut ticks = field(14) + field(15);
    if reaped_children {
        ticks += field(16) + field(17);
    }
    Some(ticks / TICKS_PER_S)
}

fn parent(pid: &str) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of one process.
pub fn process(pid: u32) -> f64 {
    seconds(&pid.to_string(), false).unwrap_or(0.0)
}

/// CPU seconds of this process.
pub fn this_process() -> f64 {
    seconds("self", false).unwrap_or(0.0)
}

/// CPU seconds of a process and its direct children, living or exited (a Postgres postmaster
/// and its backends).
pub fn tree(root: u32) -> f64 {
    let mut total = seconds(&root.to_string(), true).unwrap_or(0.0);
    let Ok(entries) = std::fs::read_dir("/proc") else { return total };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if parent(pid) == Some(root) {
            total += seconds(pid, false).unwrap_or(0.0);
        }
    }
    total
}
