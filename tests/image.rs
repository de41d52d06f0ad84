//! The container image end to end: `deploy/Dockerfile` built with podman from the static release
//! binary (its `prebuilt` path, so nothing is pulled), then run the way a pod runs it — read-only
//! root, UID 65532, in a network namespace of the test's own (so the image's default ports and
//! its `HEALTHCHECK` URL are free) — and asked to judge real requests.
//!
//! Needs podman and runc (skipped, saying so, only when podman is missing), root (network
//! namespaces, rootful podman) and `ip`; `scripts/test` installs them and builds the static
//! binary before the suite, so the build here is up to date at once. Each test has its own
//! podman storage in a temp dir: its images, containers and volumes go with it, pass or fail.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::pod::{in_ns, resolver};
use support::*;

/// The target the image's binary is built for, and where the Dockerfile's `prebuilt` stage
/// takes it from (relative to the repository, the build context).
const TARGET: &str = "x86_64-unknown-linux-gnu";
const PREBUILT: &str = "target/x86_64-unknown-linux-gnu/release/sluice";

/// True when podman is there; otherwise prints why the test is skipped.
fn can_run(test: &str) -> bool {
    let podman = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !podman {
        eprintln!("skipping {test}: podman is not installed (apt-get install podman runc)");
        return false;
    }
    assert!(
        netns::is_root(),
        "{test}: needs root (network namespaces, rootful podman); scripts/test runs as root"
    );
    true
}

/// Builds the static binary the image holds (what `scripts/test` built already: then this is a
/// no-op) and returns its path.
fn static_binary() -> Result<PathBuf, Error> {
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--release", "--locked", "--bin", "sluice"])
        .args(["--target", TARGET, "--target-dir"])
        .arg(repo("target"))
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(repo(""));
    // What `cargo test` set for this test (CARGO_MANIFEST_DIR, CARGO_PKG_*, …) would make the
    // build scripts that watch them, and so the whole build, dirty: build as a shell would.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            build.env_remove(&*name);
        }
    }
    let out = build.output()?;
    if !out.status.success() {
        return Err(format!(
            "static build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(repo(PREBUILT))
}

/// The `HEALTHCHECK` command `deploy/Dockerfile` declares (its `CMD [...]` JSON array).
fn dockerfile_healthcheck() -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(repo("deploy/Dockerfile"))?;
    let joined = text.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.trim_start().starts_with("HEALTHCHECK"))
        .ok_or("deploy/Dockerfile has no HEALTHCHECK")?;
    let array = line
        .split_once("CMD")
        .map(|(_, cmd)| cmd.trim())
        .ok_or("the HEALTHCHECK has no CMD")?;
    Ok(serde_json::from_str(array)?)
}

/// podman with a storage of its own (images, containers, volumes), removed on drop.
struct Podman {
    dir: TempDir,
    conf: Option<PathBuf>,
}

impl Podman {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        // podman asks runc for raised rlimits by default, which a machine that is itself a
        // container may refuse ("error setting rlimit"); with no containers.conf of the
        // machine's own, this one asks for none (the containers get podman's own limits).
        let conf = (std::env::var_os("CONTAINERS_CONF").is_none()
            && !Path::new("/etc/containers/containers.conf").exists())
        .then(|| dir.file("containers.conf", "[containers]\ndefault_ulimits = []\n"));
        Self { dir, conf }
    }

    fn command(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--runtime", "runc"])
            .current_dir(repo(""));
        if let Some(conf) = &self.conf {
            c.env("CONTAINERS_CONF", conf);
        }
        c
    }

    fn output(&self, args: &[&str]) -> Result<Output, Error> {
        Ok(self.command().args(args).output()?)
    }

    /// Runs `podman ARGS`; its stdout, or an error with its stderr.
    fn run(&self, args: &[&str]) -> Result<String, Error> {
        let out = self.output(args)?;
        if !out.status.success() {
            return Err(format!(
                "podman {}: {}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Builds the image from the static binary, the way the docs show, and tags it `tag`.
    fn build(&self, tag: &str) -> Result<(), Error> {
        let binary = static_binary()?;
        eprintln!(
            "binary {}: {} bytes",
            binary.display(),
            std::fs::metadata(&binary)?.len()
        );
        self.run(&[
            "build",
            "--format",
            "docker",
            "-f",
            "deploy/Dockerfile",
            "--build-arg",
            "SLUICE_BINARY=prebuilt",
            "-t",
            tag,
            ".",
        ])?;
        Ok(())
    }

    /// `podman run -d` of `image` inside `ns` as the pod runs it: read-only root, UID 65532.
    fn start(
        &self,
        name: &str,
        ns: &Namespace,
        extra: &[&str],
        image_and_args: &[&str],
    ) -> Result<(), Error> {
        let network = format!("ns:/run/netns/{}", ns.name());
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--read-only",
            "--user",
            "65532:65532",
            "--network",
            &network,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(image_and_args);
        self.run(&args)?;
        Ok(())
    }

    /// Waits until the container's `/readyz` answers 200 on the namespace's loopback; fails
    /// with the container's log if it exits or the wait runs out.
    fn wait_ready(&self, name: &str, ns: &Namespace) -> Result<(), Error> {
        let admin: SocketAddr = "127.0.0.1:9901".parse()?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let ready = in_ns(ns.name(), move || http_get(admin, "/readyz"))?;
            if ready.is_ok_and(|(status, _)| status == 200) {
                return Ok(());
            }
            let running = self.run(&["inspect", "--format", "{{.State.Running}}", name])?;
            if running.trim() != "true" || std::time::Instant::now() > deadline {
                return Err(format!(
                    "{name} never answered /readyz (running: {}); its log:\n{}",
                    running.trim(),
                    self.logs(name)
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self, name: &str) -> String {
        self.output(&["logs", name])
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }

    /// The image's `podman image inspect` document.
    fn inspect(&self, image: &str) -> Result<serde_json::Value, Error> {
        let text = self.run(&["image", "inspect", image])?;
        let mut all: Vec<serde_json::Value> = serde_json::from_str(&text)?;
        all.pop().ok_or_else(|| format!("no image {image}").into())
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for args in [
            &["rm", "--all", "--force", "--time", "0"][..],
            &["image", "unmount", "--all"],
            &["rmi", "--all", "--force"],
            &["volume", "rm", "--all", "--force"],
        ] {
            let _ = self.output(args);
        }
    }
}

/// Every path in the image's file system with its owner and mode, `path uid:gid mode`.
fn image_files(podman: &Podman, image: &str) -> Result<Vec<String>, Error> {
    let root = PathBuf::from(podman.run(&["image", "mount", image])?.trim());
    let mut files = Vec::new();
    let mut todo = vec![root.clone()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            files.push(format!(
                "/{} {}:{} {:o}",
                path.strip_prefix(&root)?.display(),
                meta.uid(),
                meta.gid(),
                meta.permissions().mode() & 0o7777
            ));
            if meta.is_dir() {
                todo.push(path);
            }
        }
    }
    podman.run(&["image", "unmount", image])?;
    files.sort();
    Ok(files)
}

/// A proxy request sent from inside `ns` to the gateway on its loopback; (status, body).
fn through_proxy(ns: &Namespace, request: String) -> Result<(u16, String), Error> {
    let proxy: SocketAddr = "127.0.0.1:3128".parse()?;
    let resp = in_ns(ns.name(), move || raw_exchange(proxy, request.as_bytes()))??;
    parse_response(&resp)
}

fn get(url: &str) -> String {
    format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

#[test]
fn the_image_is_the_static_binary_alone_and_serves_its_defaults_read_only_as_65532() -> TestResult {
    if !can_run("the_image_is_the_static_binary_alone_and_serves_its_defaults_read_only_as_65532") {
        return Ok(());
    }
    let ns = Namespace::new("image")?;
    let podman = Podman::new("image-defaults");
    let image = "localhost/sluice:test";
    podman.build(image)?;

    let info = podman.inspect(image)?;
    let size = info["Size"].as_u64().ok_or("no image size")?;
    eprintln!(
        "image {image}: {size} bytes ({:.1} MB, {:.1} MiB)",
        size as f64 / 1e6,
        size as f64 / (1024.0 * 1024.0)
    );
    let config = &info["Config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/sluice"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["serve"]));
    for port in ["3128/tcp", "1883/tcp", "9901/tcp", "8443/tcp"] {
        assert!(
            config["ExposedPorts"].get(port).is_some(),
            "{port} not exposed: {config}"
        );
    }
    let healthcheck = dockerfile_healthcheck()?;
    let mut declared = vec!["CMD".to_string()];
    declared.extend(healthcheck.iter().cloned());
    assert_eq!(
        info["Healthcheck"]["Test"],
        serde_json::json!(declared),
        "the image's HEALTHCHECK is not the Dockerfile's"
    );

    // Nothing but the binary and the state directory: no shell, no libraries, no CA bundle.
    assert_eq!(
        image_files(&podman, image)?,
        [
            "/usr 0:0 755",
            "/usr/local 0:0 755",
            "/usr/local/bin 0:0 755",
            "/usr/local/bin/sluice 0:0 755",
            "/var 0:0 755",
            "/var/lib 0:0 755",
            "/var/lib/sluice 65532:65532 755",
        ]
    );

    // The embedded defaults: proxy on 127.0.0.1:3128, admin on 127.0.0.1:9901, in the test's
    // namespace. A resolver there answers for one plant name (the static glibc's DNS lookup).
    let upstream = in_ns(ns.name(), || Upstream::start("127.0.0.1", Duration::ZERO))??;
    resolver(
        ns.name(),
        "127.0.0.1:53".parse()?,
        &[("press7.plant.local", "127.0.0.1")],
        None,
    )?;
    podman.start("defaults", &ns, &["--dns", "127.0.0.1"], &[image])?;
    podman.wait_ready("defaults", &ns)?;

    // The HEALTHCHECK, as podman runs it and as the Dockerfile spells it.
    let checked = podman.output(&["healthcheck", "run", "defaults"])?;
    assert!(
        checked.status.success(),
        "podman healthcheck run: {}\n{}",
        checked.status,
        String::from_utf8_lossy(&checked.stderr)
    );
    let mut exec = vec!["exec", "defaults"];
    exec.extend(healthcheck.iter().map(String::as_str));
    podman.run(&exec)?;
    let health = podman.run(&[
        "inspect",
        "--format",
        "{{.State.Health.Status}}",
        "defaults",
    ])?;
    assert_eq!(health.trim(), "healthy");

    // An export is refused with sluice's 403, and the upstream never sees a connection.
    let (status, body) = through_proxy(&ns, get("http://upload.example.com/v1/readings"))?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("request denied by policy"), "{body}");
    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // A local upstream by address, and by a plant name the resolver answers: forwarded.
    let port = upstream.addr.port();
    let (status, body) = through_proxy(&ns, get(&format!("http://127.0.0.1:{port}/line1")))?;
    assert_eq!((status, body.as_str()), (200, "upstream saw GET /line1"));
    let by_name = format!("http://press7.plant.local:{port}/press7");
    let (status, body) = through_proxy(&ns, get(&by_name))?;
    assert_eq!(
        (status, body.as_str()),
        (200, "upstream saw GET /press7"),
        "{}",
        podman.logs("defaults")
    );
    let logs = podman.logs("defaults");
    assert!(logs.contains("target=upload.example.com:80"), "{logs}");
    Ok(())
}

#[test]
fn the_image_runs_the_pods_config_with_its_decision_log_on_the_state_volume() -> TestResult {
    if !can_run("the_image_runs_the_pods_config_with_its_decision_log_on_the_state_volume") {
        return Ok(());
    }
    let ns = Namespace::new("imgpod")?;
    let podman = Podman::new("image-pod");
    let image = "localhost/sluice:test";
    podman.build(image)?;

    // deploy/k3s/processor/deployment.yaml's mounts: the config and policy ConfigMaps read-only,
    // the state emptyDir (here a volume) on /var/lib/sluice; the same args.
    let config = format!(
        "{}:/etc/sluice/sluice.yaml:ro",
        repo("deploy/k3s/processor/sluice.yaml").display()
    );
    let policies = format!(
        "{}:/etc/sluice/policies/manufacturing:ro",
        repo("deploy/k3s/processor/policies").display()
    );
    podman.start(
        "pod",
        &ns,
        &[
            "-v",
            &config,
            "-v",
            &policies,
            "-v",
            "sluice-state:/var/lib/sluice",
            "-e",
            "POD_NAME=press-7",
        ],
        &[image, "serve", "-c", "/etc/sluice/sluice.yaml"],
    )?;
    podman.wait_ready("pod", &ns)?;

    let (status, body) = through_proxy(&ns, get("http://upload.example.com/v1/readings"))?;
    assert_eq!(status, 403, "{body}");

    // The deny reaches the decision log on the volume (written off the request path), and
    // `sluice log` in the container reads it back.
    let mut shown = String::new();
    wait_until(WAIT, "the deny in the decision log", || {
        shown = podman
            .run(&[
                "exec",
                "pod",
                "/usr/local/bin/sluice",
                "log",
                "--db",
                "/var/lib/sluice/decisions.db",
                "--verdict",
                "deny",
            ])
            .unwrap_or_else(|e| e.to_string());
        shown.contains("upload.example.com")
    });
    assert!(shown.contains("press-7"), "{shown}");
    Ok(())
}
