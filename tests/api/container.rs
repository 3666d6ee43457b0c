//! The container image, built and run for real with podman: the Dockerfile's runtime stage, with
//! this build's `premise` binary standing in for the builder stage's (no registry is reachable
//! here, so neither the Rust image nor `debian:bookworm-slim` can be pulled; the base is made
//! with debootstrap, and kept between runs). The container runs with a named volume and must
//! answer `/readyz` and a first login, run as uid 10001, keep its SQLite file in the volume
//! (across a restart), pass its own HEALTHCHECK, and stop cleanly on SIGTERM.
//!
//! Needs root, podman (with runc) and debootstrap: `./scripts/test` installs them on Debian.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support;
use premise_testkit::{TempDir, unique_suffix};
use serde_json::{Value, json};

/// The base the test makes with debootstrap, under a name of its own: tagged as
/// `debian:bookworm-slim` it would shadow the real image on a developer's machine.
const BASE_IMAGE: &str = "localhost/premise-test-base:bookworm-slim";
const NEEDS: &str = "this test builds and runs the container image: it needs root, podman (with \
    runc) and debootstrap. On Debian, `./scripts/test` installs them (apt-get install podman \
    runc debootstrap) and runs the whole suite.";

/// podman, with the settings this machine kind needs (runc, cgroupfs, file limits).
struct Podman {
    conf: PathBuf,
    _dir: TempDir,
}

impl Podman {
    fn new() -> Self {
        let dir = TempDir::new("premise-podman");
        let conf = dir.path().join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\n\
             default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\n\
             runtime = \"runc\"\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
        )
        .unwrap();
        Self { conf, _dir: dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .env("CONTAINERS_CONF", &self.conf)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running podman failed ({e}): {NEEDS}"))
    }

    /// Runs podman and returns its standard output; panics with its error otherwise.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A stand-in for `debian:bookworm-slim` (as [`BASE_IMAGE`]), made with debootstrap unless
    /// podman or the cache has it.
    fn ensure_base(&self) {
        if self.run(&["image", "exists", BASE_IMAGE]).status.success() {
            return;
        }
        let cache = cache_dir().join("debian-bookworm-minbase.tar");
        if !cache.is_file() {
            let started = Instant::now();
            let root = TempDir::new("premise-debootstrap");
            let rootfs = root.path().join("rootfs");
            let out = Command::new("debootstrap")
                .args(["--variant=minbase", "bookworm"])
                .arg(&rootfs)
                .arg("http://deb.debian.org/debian")
                .output()
                .unwrap_or_else(|e| panic!("running debootstrap failed ({e}): {NEEDS}"));
            assert!(
                out.status.success(),
                "debootstrap failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // What bookworm-slim leaves out.
            for dir in
                ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"]
            {
                let _ = std::fs::remove_dir_all(rootfs.join(dir));
                let _ = std::fs::create_dir_all(rootfs.join(dir));
            }
            std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
            let partial = cache.with_extension("tar.partial");
            let ok = Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&partial)
                .arg(".")
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "tar of the debootstrapped base failed");
            std::fs::rename(&partial, &cache).unwrap();
            println!("debootstrapped the base image in {:?}", started.elapsed());
        }
        self.ok(&["import", cache.to_str().unwrap(), BASE_IMAGE]);
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("premise")
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Removes what a run made, whatever happens.
struct Cleanup<'a> {
    podman: &'a Podman,
    container: String,
    volume: String,
    image: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.podman.run(&["logs", &self.container]);
            println!("--- container log ---\n{}", String::from_utf8_lossy(&logs.stdout));
        }
        let _ = self.podman.run(&["rm", "-f", "-t", "0", &self.container]);
        let _ = self.podman.run(&["volume", "rm", "-f", &self.volume]);
        let _ = self.podman.run(&["rmi", "-f", &self.image]);
    }
}

#[tokio::test]
async fn the_image_starts_serves_keeps_its_data_and_stops_cleanly() {
    assert!(running_as_root(), "{NEEDS}");
    let podman = Podman::new();
    let started = Instant::now();
    podman.ensure_base();

    // The builder stage's output, `/out/premise`, is this build's binary.
    let context = TempDir::new("premise-image");
    std::fs::create_dir_all(context.path().join("builder/out")).unwrap();
    std::fs::create_dir_all(context.path().join("empty")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_premise"), context.path().join("builder/out/premise"))
        .unwrap();
    let suffix = unique_suffix();
    let cleanup = Cleanup {
        podman: &podman,
        container: format!("premise-test-{suffix}"),
        volume: format!("premise-test-data-{suffix}"),
        image: format!("localhost/premise-test:{suffix}"),
    };
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    let builder = format!("builder={}", context.path().join("builder").display());
    podman.ok(&[
        "build",
        "--pull=never",
        "--network=host",
        "--format=docker",
        "--target=runtime",
        "--build-context",
        &builder,
        "--build-arg",
        &format!("RUNTIME_BASE={BASE_IMAGE}"),
        "--tag",
        &cleanup.image,
        "--file",
        dockerfile.to_str().unwrap(),
        context.path().join("empty").to_str().unwrap(),
    ]);
    let built = started.elapsed();

    // Docker gives a new named volume the ownership of the image's directory (podman gives it
    // the container user's): the directory must exist in the image, owned by the premise user,
    // and be declared a volume.
    let volumes =
        podman.ok(&["image", "inspect", "--format", "{{.Config.Volumes}}", &cleanup.image]);
    assert!(volumes.contains("/var/lib/premise/data"), "VOLUME declared: {volumes}");
    let owner = podman.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "stat",
        &cleanup.image,
        "-c",
        "%u:%g %a",
        "/var/lib/premise/data",
    ]);
    assert!(owner.starts_with("10001:10001"), "the data directory in the image: {owner}");

    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let mount = format!("{}:/var/lib/premise/data", cleanup.volume);
    let run = |podman: &Podman| {
        podman.ok(&[
            "run",
            "--detach",
            "--name",
            &cleanup.container,
            "--publish",
            &publish,
            "--volume",
            &mount,
            &cleanup.image,
        ])
    };
    run(&podman);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;

    let answer: Value = http
        .post(format!("{base}/v1/users/login"))
        .basic_auth("admin", Some("secret"))
        .json(&json!({"new_password": support::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["users"][0]["token"].is_string(), "first login: {answer}");

    let id = podman.ok(&["exec", &cleanup.container, "id", "-u"]);
    assert_eq!(id, "10001", "runs as the unprivileged user");
    let health = podman.run(&["healthcheck", "run", &cleanup.container]);
    assert!(
        health.status.success(),
        "the image's HEALTHCHECK passes: {}",
        String::from_utf8_lossy(&health.stdout)
    );
    let mountpoint =
        podman.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", &cleanup.volume]);
    assert!(
        Path::new(&mountpoint).join("premise.db").is_file(),
        "the database file lives in the volume ({mountpoint})"
    );

    // SIGTERM: a clean, prompt exit.
    let stopping = Instant::now();
    podman.ok(&["stop", "--time", "30", &cleanup.container]);
    let stopped_in = stopping.elapsed();
    let exit = podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", &cleanup.container]);
    assert_eq!(exit, "0", "exit code after SIGTERM");
    let logs = podman.run(&["logs", &cleanup.container]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("\"stopped\""), "a graceful stop");
    assert!(stopped_in < Duration::from_secs(10), "stopped in {stopped_in:?}");

    // The data outlives the container: a new one on the volume knows the changed password.
    podman.ok(&["rm", &cleanup.container]);
    run(&podman);
    wait_ready(&http, &base).await;
    let login = http
        .post(format!("{base}/v1/users/login"))
        .basic_auth("admin", Some(support::ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the account from the first container");
    println!(
        "image built in {built:?}; whole check {:?}; SIGTERM stop in {stopped_in:?}",
        started.elapsed()
    );
    drop(cleanup);
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = http.get(format!("{base}/readyz")).send().await
            && resp.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "the container was not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
