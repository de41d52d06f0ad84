//! The YAML configuration of `sluice serve` and `sluice webhook`: every key optional, defaults
//! as in DESIGN.md, unknown keys and bad values rejected with their path (`mqtt[0].upstream`).
//!
//! Not here: what the values mean at run time (site.rs, the proxies) or reloading.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

mod bridge;
pub use bridge::{
    BridgeBroker, BridgeConfig, OnFull, Rate, ReplayConfig, ReplayOrder, SpoolConfig, check_filter,
};

/// A configuration error, printed as one line naming the file and the key.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub site: SiteConfig,
    pub identity: IdentityConfig,
    pub policy: PolicyConfig,
    pub cache: CacheConfig,
    /// The HTTP forward proxy; `http: null` turns it off.
    #[serde(default = "default_http")]
    pub http: Option<HttpConfig>,
    pub mqtt: Vec<MqttListenerConfig>,
    pub admin: AdminConfig,
    pub webhook: WebhookConfig,
    pub log: LogConfig,
    /// The local SQLite decision log; absent or `null` turns it off.
    pub decision_log: Option<DecisionLogConfig>,
    /// Export bridges (local broker → judged → SQLite spool → remote broker); none by default.
    pub bridges: Vec<BridgeConfig>,
}

/// The defaults of DESIGN.md: an empty file means exactly this (the HTTP proxy on).
impl Default for Config {
    fn default() -> Self {
        Self {
            site: SiteConfig::default(),
            identity: IdentityConfig::default(),
            policy: PolicyConfig::default(),
            cache: CacheConfig::default(),
            http: default_http(),
            mqtt: Vec::new(),
            admin: AdminConfig::default(),
            webhook: WebhookConfig::default(),
            log: LogConfig::default(),
            decision_log: None,
            bridges: Vec::new(),
        }
    }
}

fn default_http() -> Option<HttpConfig> {
    Some(HttpConfig::default())
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub name: String,
    /// CIDRs whose addresses are inside the plant.
    pub local_networks: Vec<String>,
    /// Names inside the plant: exact (`historian`), or `*.suffix`.
    pub local_domains: Vec<String>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: "plant-042".into(),
            local_networks: [
                "127.0.0.0/8",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "169.254.0.0/16",
                "::1/128",
                "fc00::/7",
                "fe80::/10",
            ]
            .map(String::from)
            .to_vec(),
            local_domains: ["localhost", "*.local", "*.internal"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// Fills `input.source`; empty fields are taken from POD_NAME, POD_NAMESPACE and NODE_NAME.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub workload: String,
    pub namespace: String,
    pub node: String,
}

impl IdentityConfig {
    /// The identity with the Kubernetes downward-API environment filling what the file left empty.
    pub fn resolved(&self) -> Self {
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let pick = |v: &str, k: &str| {
            if v.is_empty() { env(k) } else { v.to_string() }
        };
        Self {
            workload: pick(&self.workload, "POD_NAME"),
            namespace: pick(&self.namespace, "POD_NAMESPACE"),
            node: pick(&self.node, "NODE_NAME"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    Deny,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Directories and files of .rego and data; empty means the embedded shipped policies.
    pub paths: Vec<PathBuf>,
    pub decision: String,
    pub v0_compatible: bool,
    pub eval_timeout: Dur,
    /// Only `deny` exists: an evaluation error never lets traffic through.
    pub on_error: OnError,
    /// Poll `paths` for changes and reload (debounced; picked up within a second).
    pub watch: bool,
    /// An OPA bundle (from a file or an HTTP(S) server) instead of `paths`.
    pub bundle: Option<BundleConfig>,
    /// What serves while no bundle was ever activated (nothing persisted, server unreachable).
    pub on_missing_policy: OnMissingPolicy,
}

/// What enforces before the first bundle arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingPolicy {
    /// The shipped policies embedded in the binary.
    Embedded,
    /// Local traffic passes, every export is denied.
    DenyExports,
}

/// `policy.bundle`: where an OPA bundle comes from and how it is checked and kept.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BundleConfig {
    /// `http://` or `https://` URL of the bundle (`.tar.gz`); polled with `If-None-Match`.
    #[serde(default)]
    pub url: Option<String>,
    /// A bundle file on disk; re-read when it changes.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Delay between polls is random in [poll_min, poll_max]; failures back off up to poll_max.
    #[serde(default = "default_poll_min")]
    pub poll_min: Dur,
    #[serde(default = "default_poll_max")]
    pub poll_max: Dur,
    /// Deadline for one download (connect, headers and body).
    #[serde(default = "default_bundle_timeout")]
    pub timeout: Dur,
    /// Largest bundle accepted, compressed and uncompressed.
    #[serde(default = "default_bundle_max_size")]
    pub max_size: Size,
    /// PEM public key (RSA or P-256); when set, only bundles signed by it are activated.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// Expected `kid`/`keyid` of the signature, when the signer sets one.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Expected `scope` claim of the signature.
    #[serde(default)]
    pub scope: Option<String>,
    /// PEM CA bundle trusted for an `https://` bundle server.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Where the last activated bundle is kept for restarts without the server.
    #[serde(default)]
    pub persist_dir: Option<PathBuf>,
}

fn default_poll_min() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_poll_max() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_bundle_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_bundle_max_size() -> Size {
    Size(32 * 1024 * 1024)
}

/// `decision_log`: the local SQLite record of decisions (never payloads).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionLogConfig {
    pub path: PathBuf,
    /// Fraction of allowed decisions recorded (0 to 1); every deny is recorded.
    pub sample_allowed: f64,
    /// Rows older than this are deleted.
    pub max_age: Dur,
    /// The database is trimmed (oldest rows first) to stay under this size.
    pub max_size: Size,
    /// Entries waiting for the writer; beyond it entries are dropped and counted.
    pub queue: usize,
}

/// Where `sluice log` and the gateway look when `decision_log.path` is not set.
pub const DEFAULT_DECISION_LOG: &str = "/var/lib/sluice/decisions.db";

impl Default for DecisionLogConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_DECISION_LOG),
            sample_allowed: 0.0,
            max_age: Dur(Duration::from_secs(7 * 24 * 3600)),
            max_size: Size(256 * 1024 * 1024),
            queue: 10_000,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            decision: "data.manufacturing.smart".into(),
            v0_compatible: false,
            eval_timeout: Dur(Duration::from_millis(50)),
            on_error: OnError::Deny,
            watch: false,
            bundle: None,
            on_missing_policy: OnMissingPolicy::Embedded,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub capacity: u64,
    pub ttl: Dur,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Dur(Duration::from_secs(300)),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Largest request head (request line + headers) accepted.
    pub max_header_bytes: Size,
    /// Time a client has to send a complete request head (slowloris guard).
    pub header_timeout: Dur,
    /// Idle keep-alive connections (client side and pooled upstream) are closed after this.
    pub idle_timeout: Dur,
    /// Time to establish an upstream TCP connection; past it the client gets 504.
    pub connect_timeout: Dur,
    /// Time to wait for the upstream's response head; past it the client gets 504.
    pub response_timeout: Dur,
    /// Time a CONNECT tunnel waits for the client's first bytes (to read a TLS SNI).
    pub tunnel_peek_timeout: Dur,
    /// Concurrent client connections; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Deadline for open requests on SIGTERM.
    pub shutdown_grace: Dur,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            max_header_bytes: Size(64 * 1024),
            header_timeout: Dur(Duration::from_secs(10)),
            idle_timeout: Dur(Duration::from_secs(90)),
            connect_timeout: Dur(Duration::from_secs(5)),
            response_timeout: Dur(Duration::from_secs(60)),
            tunnel_peek_timeout: Dur(Duration::from_millis(500)),
            max_connections: 10_000,
            shutdown_grace: Dur(Duration::from_secs(10)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum V3Deny {
    /// Acknowledge locally (PUBACK) and drop the message.
    Drop,
    /// Close the client's connection.
    Disconnect,
}

/// TLS on a listener (server side).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA; its identity fills
    /// `input.source`.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// TLS towards an upstream (client side).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM bundle of CAs trusted for the upstream.
    pub ca: PathBuf,
    /// Name to verify; defaults to the upstream host.
    #[serde(default)]
    pub server_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttListenerConfig {
    pub listen: SocketAddr,
    /// `host:port` of the broker this listener relays to.
    pub upstream: String,
    #[serde(default = "default_v3_deny")]
    pub v3_deny: V3Deny,
    #[serde(default)]
    pub tls: Option<ServerTls>,
    #[serde(default)]
    pub upstream_tls: Option<UpstreamTls>,
    /// Largest MQTT packet accepted in either direction.
    #[serde(default = "default_max_packet")]
    pub max_packet_size: Size,
    /// Time a client has to complete CONNECT (and TLS) after opening the socket.
    #[serde(default = "default_mqtt_connect_timeout")]
    pub connect_timeout: Dur,
    #[serde(default = "default_mqtt_max_connections")]
    pub max_connections: usize,
}

fn default_v3_deny() -> V3Deny {
    V3Deny::Drop
}
fn default_max_packet() -> Size {
    Size(1024 * 1024)
}
fn default_mqtt_connect_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_mqtt_max_connections() -> usize {
    20_000
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `admin: {listen: null}` is not allowed: probes and metrics are how the plant sees sluice.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9901)),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    pub tls: WebhookTls,
    /// ConstraintTemplates and Constraints; empty means the shipped policies/gatekeeper.
    pub paths: Vec<PathBuf>,
    /// Requests in these namespaces are always allowed (Gatekeeper's exempt namespaces).
    pub exempt_namespaces: Vec<String>,
    /// Directory of Kubernetes objects that becomes `data.inventory`.
    pub inventory: Option<PathBuf>,
    /// Largest AdmissionReview body accepted.
    pub max_body_bytes: Size,
    /// Time limit of one template evaluation; past it the evaluation is a violation.
    pub eval_timeout: Dur,
    /// Concurrent client connections; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Dur,
    /// Time a client has to send a whole request (head and body).
    pub request_timeout: Dur,
    /// How often, at most, the certificate files are checked for changes.
    pub cert_reload_interval: Dur,
    /// Deadline for open requests on SIGTERM.
    pub shutdown_grace: Dur,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls: WebhookTls::default(),
            paths: Vec::new(),
            exempt_namespaces: vec!["kube-system".into()],
            inventory: None,
            max_body_bytes: Size(3 * 1024 * 1024),
            eval_timeout: Dur(Duration::from_secs(1)),
            max_connections: 1024,
            handshake_timeout: Dur(Duration::from_secs(10)),
            request_timeout: Dur(Duration::from_secs(10)),
            cert_reload_interval: Dur(Duration::from_secs(2)),
            shutdown_grace: Dur(Duration::from_secs(10)),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for WebhookTls {
    fn default() -> Self {
        Self {
            cert: "/certs/tls.crt".into(),
            key: "/certs/tls.key".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `sluice=debug,warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// A duration written `250ms`, `30s`, `5m`, `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn get(self) -> Duration {
        self.0
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected a number and a unit, like 250ms, 30s, 5m")
    })?;
    let secs = match unit.trim() {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "" => {
            return Err(format!(
                "invalid duration {s:?}: missing unit (ms, s, m, h)"
            ));
        }
        u => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {u:?} (use ms, s, m, h)"
            ));
        }
    };
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("invalid duration {s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).map_err(de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

/// A size written `512`, `64KiB`, `1MiB` (also `KB`/`MB` as powers of ten).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn get(self) -> u64 {
        self.0
    }
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid size {s:?}: expected a number and a unit, like 64KiB or 1MiB")
    })?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {u:?} (use KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: out of range"))
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => parse_size(&s).map(Size).map_err(de::Error::custom),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{shown}: cannot read config: {e}")))?;
        Self::parse(&text).map_err(|e| ConfigError(format!("{shown}: {e}")))
    }

    /// Parses and validates YAML text; the error names the key path.
    pub fn parse(text: &str) -> Result<Self, String> {
        // An empty file is the default config.
        let doc = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            crate::policy::loader::parse_yaml(text)?
        };
        let doc = if doc.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            doc
        };
        let cfg: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        for (i, n) in self.site.local_networks.iter().enumerate() {
            n.parse::<ipnet::IpNet>().map_err(|_| {
                format!("site.local_networks[{i}]: {n:?} is not a CIDR like 10.0.0.0/8")
            })?;
        }
        for (i, d) in self.site.local_domains.iter().enumerate() {
            if d.is_empty() || d[1..].contains('*') || (d.starts_with('*') && !d.starts_with("*."))
            {
                return Err(format!(
                    "site.local_domains[{i}]: {d:?} must be a name or *.suffix"
                ));
            }
        }
        if !self.policy.decision.starts_with("data.") {
            return Err(format!(
                "policy.decision: {:?} must name a package under data, like data.manufacturing.smart",
                self.policy.decision
            ));
        }
        if self.policy.eval_timeout.0.is_zero() {
            return Err("policy.eval_timeout: must be greater than zero".into());
        }
        if let Some(b) = &self.policy.bundle {
            validate_bundle(b, &self.policy)?;
        }
        if self.policy.watch && self.policy.paths.is_empty() {
            return Err(
                "policy.watch: needs policy.paths (the embedded policies never change; a bundle file is always watched)"
                    .into(),
            );
        }
        if let Some(d) = &self.decision_log {
            if !(0.0..=1.0).contains(&d.sample_allowed) {
                return Err(format!(
                    "decision_log.sample_allowed: {} must be between 0 and 1",
                    d.sample_allowed
                ));
            }
            if d.queue == 0 {
                return Err("decision_log.queue: must be at least 1".into());
            }
            if d.max_size.0 < 64 * 1024 {
                return Err("decision_log.max_size: must be at least 64KiB".into());
            }
            if d.max_age.0.is_zero() {
                return Err("decision_log.max_age: must be greater than zero".into());
            }
        }
        if let Some(h) = &self.http {
            if h.max_header_bytes.0 < 1024 {
                return Err("http.max_header_bytes: must be at least 1KiB".into());
            }
            if h.max_connections == 0 {
                return Err("http.max_connections: must be at least 1".into());
            }
        }
        if self.webhook.max_connections == 0 {
            return Err("webhook.max_connections: must be at least 1".into());
        }
        if self.webhook.max_body_bytes.0 < 1024 {
            return Err("webhook.max_body_bytes: must be at least 1KiB".into());
        }
        if self.webhook.eval_timeout.0.is_zero() {
            return Err("webhook.eval_timeout: must be greater than zero".into());
        }
        bridge::validate(&self.bridges)?;
        for (i, m) in self.mqtt.iter().enumerate() {
            split_host_port(&m.upstream).map_err(|e| format!("mqtt[{i}].upstream: {e}"))?;
            if m.max_packet_size.0 < 128 || m.max_packet_size.0 > 268_435_455 {
                return Err(format!(
                    "mqtt[{i}].max_packet_size: must be between 128 bytes and 256MiB (MQTT's limit)"
                ));
            }
            if m.max_connections == 0 {
                return Err(format!("mqtt[{i}].max_connections: must be at least 1"));
            }
        }
        Ok(())
    }
}

fn validate_bundle(b: &BundleConfig, policy: &PolicyConfig) -> Result<(), String> {
    match (&b.url, &b.file) {
        (None, None) => return Err("policy.bundle: needs `url` or `file`".into()),
        (Some(_), Some(_)) => {
            return Err("policy.bundle: `url` and `file` are exclusive; set one".into());
        }
        (Some(u), None) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "policy.bundle.url: {u:?} must start with http:// or https://"
                ));
            }
        }
        (None, Some(_)) => {}
    }
    if !policy.paths.is_empty() {
        return Err(
            "policy.bundle: cannot be combined with policy.paths; put the policies in the bundle"
                .into(),
        );
    }
    if b.poll_min.0.is_zero() {
        return Err("policy.bundle.poll_min: must be greater than zero".into());
    }
    if b.poll_max.0 < b.poll_min.0 {
        return Err("policy.bundle.poll_max: must not be less than poll_min".into());
    }
    if b.timeout.0.is_zero() {
        return Err("policy.bundle.timeout: must be greater than zero".into());
    }
    if b.max_size.0 < 1024 {
        return Err("policy.bundle.max_size: must be at least 1KiB".into());
    }
    Ok(())
}

/// Splits `host:port` (IPv6 as `[::1]:1883`).
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("{s:?} is not host:port"))?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("{s:?} is not host:port"))?
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: port must be a number from 1 to 65535"))?;
    if host.is_empty() || port == 0 {
        return Err(format!("{s:?} is not host:port"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_the_default_config() {
        let c = Config::parse("").map_err(|e| e.to_string());
        let c = c
            .as_ref()
            .map(|c| (c.http.is_some(), c.mqtt.len(), c.cache.capacity));
        assert_eq!(c, Ok((true, 0, 100_000)));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let err = Config::parse(
            "mqtt:\n  - listen: 127.0.0.1:1883\n    upstream: b:1883\n    v3deny: drop\n",
        )
        .err()
        .unwrap_or_default();
        assert!(
            err.starts_with("mqtt[0].v3deny: unknown field `v3deny`"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::parse("cache:\n  ttl: 5 minutes\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("cache.ttl: invalid duration"), "{err}");
        let err = Config::parse("site:\n  local_networks: [10.0.0.0/33]\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("site.local_networks[0]:"), "{err}");
    }

    #[test]
    fn bundle_and_decision_log_keys_are_validated_with_their_path() {
        let err = Config::parse("policy:\n  bundle: {url: ftp://x/b.tar.gz}\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("policy.bundle.url: "), "{err}");
        let err = Config::parse("policy:\n  bundle: {file: b.tar.gz, poll_mn: 1s}\n")
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("policy.bundle.poll_mn: unknown field"),
            "{err}"
        );
        let err = Config::parse("decision_log: {sample_allowed: 2}\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("decision_log.sample_allowed: "), "{err}");
        let err = Config::parse("policy:\n  on_missing_policy: allow_all\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("policy.on_missing_policy: "), "{err}");
        let ok = Config::parse(
            "policy:\n  on_missing_policy: deny_exports\n  bundle: {url: http://127.0.0.1:1/b.tar.gz, poll_min: 1s, poll_max: 2s}\ndecision_log: {path: /tmp/d.db}\n",
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
        assert!(
            Config::parse("")
                .map(|c| c.decision_log.is_none())
                .unwrap_or(false)
        );
    }

    #[test]
    fn yaml_1_2_keeps_yes_a_string() {
        let err = Config::parse("policy:\n  v0_compatible: yes\n")
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("policy.v0_compatible: invalid type: string"),
            "{err}"
        );
        let c = Config::parse("site:\n  name: NO\n").map(|c| c.site.name);
        assert_eq!(c, Ok("NO".to_string()));
    }

    #[test]
    fn http_null_turns_the_proxy_off() {
        assert!(
            Config::parse("http: null\n")
                .map(|c| c.http.is_none())
                .unwrap_or(false)
        );
    }

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1XB").is_err());
    }

    #[test]
    fn host_port_splits_ipv6() {
        assert_eq!(split_host_port("[::1]:1883"), Ok(("::1".into(), 1883)));
        assert_eq!(
            split_host_port("broker.plant.local:8883"),
            Ok(("broker.plant.local".into(), 8883))
        );
        assert!(split_host_port("broker").is_err());
    }
}
