//! Network namespaces a test makes for itself (`ip netns`, so root only) and always removes on
//! drop, with the processes it started inside. Not a container runtime: one namespace with its
//! loopback up, and files under `/etc/netns/NAME/` that `ip netns exec` mounts over `/etc`.

use std::process::{Child, Command, Output};

use super::Error;

/// Whether the tests run as root (namespaces and iptables need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

/// A network namespace named `sluice-{tag}-{pid}`, loopback up.
pub struct Namespace {
    name: String,
    children: Vec<Child>,
}

impl Namespace {
    pub fn new(tag: &str) -> Result<Self, Error> {
        let name = format!("sluice-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let status = Command::new("ip").args(["netns", "add", &name]).status()?;
        if !status.success() {
            return Err(format!("ip netns add {name}: {status}").into());
        }
        let ns = Self {
            name,
            children: Vec::new(),
        };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command prefix that runs a program inside, for [`super::LaunchOptions::wrapper`].
    pub fn wrapper(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Writes `/etc/netns/NAME/{file}`: programs started inside see it as `/etc/{file}`.
    pub fn etc_file(&self, file: &str, text: &str) -> Result<(), Error> {
        let etc = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&etc)?;
        std::fs::write(format!("{etc}/{file}"), text)?;
        Ok(())
    }

    /// `args` as a command run inside.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` inside; its output, or an error with its stderr when it fails.
    pub fn exec(&self, args: &[&str]) -> Result<Output, Error> {
        let out = self.command(args).output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("{args:?} in {}: {err}", self.name).into());
        }
        Ok(out)
    }

    /// Keeps `child` (started inside) until the namespace goes, then kills it.
    pub fn keep(&mut self, child: Child) {
        self.children.push(child);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}
