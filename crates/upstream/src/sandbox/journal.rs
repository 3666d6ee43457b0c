//! The sandbox's journal: one JSON line per acknowledged send, written before the
//! acknowledgement, so tests can prove every message reached the sandbox (once, and in order)
//! even across a `kill -9` of the server.

use std::io::Write;
use std::path::Path;

use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone)]
pub(super) struct Journal {
    lines: mpsc::UnboundedSender<(String, oneshot::Sender<()>)>,
}

impl Journal {
    /// Appends to `path` from a thread of its own.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let (lines, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || write(file, rx));
        Ok(Self { lines })
    }

    /// Appends `line`; `false` if it could not be written.
    pub async fn append(&self, line: String) -> bool {
        let (done, written) = oneshot::channel();
        self.lines.send((line, done)).is_ok() && written.await.is_ok()
    }
}

/// Appends lines in batches; each waiting send is released once its line is in the file (the
/// kernel's page cache survives the process being killed).
fn write(
    mut file: std::fs::File,
    mut lines: mpsc::UnboundedReceiver<(String, oneshot::Sender<()>)>,
) {
    while let Some(first) = lines.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(more) = lines.try_recv() {
            batch.push(more);
        }
        let mut text = String::new();
        for (line, _) in &batch {
            text.push_str(line);
            text.push('\n');
        }
        if let Err(e) = file.write_all(text.as_bytes()) {
            tracing::error!(error = %e, "sandbox journal write failed");
            continue;
        }
        for (_, done) in batch {
            let _ = done.send(());
        }
    }
}
