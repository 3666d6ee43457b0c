//! Real storage faults for the tests: a small tmpfs that a test fills to the last byte and
//! empties again. Mounting needs root (CI runs as root); a run that cannot mount fails with a
//! message saying so, it never skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size mounted on a fresh directory, unmounted when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
    filler: PathBuf,
}

impl SmallDisk {
    pub fn mount(size_mb: u32) -> Self {
        let path = std::env::temp_dir()
            .join(format!("premise-small-disk-{}", premise_testkit::unique_suffix()));
        std::fs::create_dir_all(&path).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m,mode=1777"), "tmpfs"])
            .arg(&path)
            .output();
        let mounted = out.as_ref().is_ok_and(|o| o.status.success());
        assert!(
            mounted,
            "THIS TEST NEEDS ROOT: it mounts a {size_mb} MB tmpfs to fill the database's disk for \
             real, and `mount -t tmpfs` failed ({}). Run the test suite as root (CI does), e.g. \
             `sudo ./scripts/test`.",
            match &out {
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                Err(e) => e.to_string(),
            }
        );
        let filler = path.join("filler");
        Self { path, filler }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file until the disk has no byte left.
    pub fn fill(&self) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
            .expect("open the filler file");
        let block = vec![0x5a_u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) if n < block.len() => {}
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk failed: {e}"),
            }
        }
        // The tail of a block, byte by byte: nothing is left.
        while file.write(&[0x5a]).is_ok_and(|n| n == 1) {}
    }

    /// Gives the filler's space back.
    pub fn free(&self) {
        std::fs::remove_file(&self.filler).expect("remove the filler file");
    }

    /// Free bytes on the disk.
    pub fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.path)
            .output()
            .expect("run df");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}
