//! Hosts simulated on one machine: a network namespace per host, each joined
//! by a veth pair to one bridge in the root namespace, whose address a server
//! can listen on. A host can be cut off (its link set down, as if its cable
//! were pulled: no reset, its packets vanish) and restored. Everything
//! created is removed on drop, also when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A system tool, looked for in PATH and then in the sbin directories (which
/// a non-login PATH may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|dir| !dir.is_empty())
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|candidate| candidate.is_file());
    found
}

/// Runs `program args`; `Err` carries the command and its stderr.
pub fn run(program: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{} {args:?}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} {}` failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub struct Host {
    pub name: String,
    /// The network namespace.
    pub netns: String,
    /// The veth end on the bridge, in the root namespace.
    link: String,
    pub address: String,
}

pub struct VirtualHosts {
    ip: PathBuf,
    bridge: String,
    /// The bridge's address, reachable from every host.
    pub server_address: String,
    hosts: Vec<Host>,
    /// Namespaces created so far, for cleanup (a host is listed once complete).
    namespaces: Vec<String>,
    links: Vec<String>,
    bridge_created: bool,
}

impl VirtualHosts {
    /// Creates one host per name. Needs root and `ip` (iproute2).
    pub fn create(names: &[&str]) -> Result<VirtualHosts, String> {
        let ip = find_tool("ip").ok_or("`ip` is not installed (Debian: apt-get install iproute2)")?;
        // Interface names have at most 15 bytes; the pid keeps concurrent runs apart.
        let tag = std::process::id() % 10_000_000;
        let subnet = free_subnet()?;
        let mut hosts = VirtualHosts {
            ip,
            bridge: format!("fsbr{tag}"),
            server_address: format!("{subnet}.1"),
            hosts: Vec::new(),
            namespaces: Vec::new(),
            links: Vec::new(),
            bridge_created: false,
        };
        let bridge = hosts.bridge.clone();
        hosts.ip(&["link", "add", &bridge, "type", "bridge"])?;
        hosts.bridge_created = true;
        hosts.ip(&["addr", "add", &format!("{}/24", hosts.server_address), "dev", &bridge])?;
        hosts.ip(&["link", "set", &bridge, "up"])?;
        for (index, name) in names.iter().enumerate() {
            let netns = format!("fstore-{tag}-{name}");
            let link = format!("fsv{tag}{index}");
            let peer = format!("fsp{tag}{index}");
            let address = format!("{subnet}.{}", index + 10);
            hosts.ip(&["netns", "add", &netns])?;
            hosts.namespaces.push(netns.clone());
            hosts.ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer])?;
            hosts.links.push(link.clone());
            hosts.ip(&["link", "set", &peer, "netns", &netns])?;
            hosts.ip(&["link", "set", &link, "master", &bridge])?;
            hosts.ip(&["link", "set", &link, "up"])?;
            hosts.ip(&["-n", &netns, "addr", "add", &format!("{address}/24"), "dev", &peer])?;
            hosts.ip(&["-n", &netns, "link", "set", &peer, "up"])?;
            hosts.ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            hosts.hosts.push(Host { name: name.to_string(), netns, link, address });
        }
        Ok(hosts)
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        run(&self.ip, args)
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name}"))
    }

    /// The command prefix that runs a program on host `name`.
    pub fn exec_on(&self, name: &str) -> Vec<String> {
        vec![self.ip.display().to_string(), "netns".into(), "exec".into(), self.host(name).netns.clone()]
    }

    /// Cuts host `name` off: its link on the bridge goes down.
    pub fn cut(&self, name: &str) {
        let link = &self.host(name).link;
        self.ip(&["link", "set", link, "down"]).unwrap();
    }

    pub fn restore(&self, name: &str) {
        let link = &self.host(name).link;
        self.ip(&["link", "set", link, "up"]).unwrap();
    }
}

impl Drop for VirtualHosts {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both; deleting a namespace
        // would too, but only once no process is left in it.
        let mut failures = Vec::new();
        for link in &self.links {
            if let Err(e) = self.ip(&["link", "del", link]) {
                failures.push(e);
            }
        }
        for netns in &self.namespaces {
            if let Err(e) = self.ip(&["netns", "del", netns]) {
                failures.push(e);
            }
        }
        if self.bridge_created {
            if let Err(e) = self.ip(&["link", "del", &self.bridge]) {
                failures.push(e);
            }
        }
        for failure in failures {
            eprintln!("cleanup of the simulated hosts: {failure}");
        }
    }
}

/// A private /24 (`10.213.N`) that no interface of this machine uses yet.
fn free_subnet() -> Result<String, String> {
    let ip = find_tool("ip").ok_or("`ip` is not installed")?;
    let out = Command::new(&ip).args(["-o", "-4", "addr", "show"]).output().map_err(|e| e.to_string())?;
    let in_use = String::from_utf8_lossy(&out.stdout).to_string();
    let start = std::process::id() % 250;
    (0..250)
        .map(|i| format!("10.213.{}", (start + i) % 250 + 1))
        .find(|subnet| !in_use.contains(&format!("{subnet}.")))
        .ok_or_else(|| "no free 10.213.N.0/24 subnet for the simulated hosts".to_string())
}
