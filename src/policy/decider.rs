//! The `Decider`: answers "may this leave the plant?" for one [`Input`].
//!
//! Compiled once per policy generation; each worker thread evaluates on its own clone of the
//! compiled engine (regorus engines need `&mut` to evaluate), so decisions never contend on a
//! lock. Verdicts are cached in moka, keyed by a fingerprint of the whole input and the policy
//! generation; an entry also keeps the full input so that a fingerprint collision is a miss,
//! never a wrong verdict. Evaluation errors and timeouts deny (fail closed) and are not cached.
//!
//! Not here: where inputs come from (the proxies), metrics export (telemetry reads
//! [`DeciderStats`]), or decision logging.

use std::cell::RefCell;
use std::hash::BuildHasherDefault;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use regorus::Engine;
use regorus::utils::limits::ExecutionTimerConfig;

use super::front::FrontSlots;
use super::input::{Input, OwnedInput, PassThroughHasher};
use super::loader::{LoadError, PolicySet};
use super::rules::declared_rules;

/// A Data API query that could not be evaluated; regorus's message on one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// How decisions are made; from the `policy` and `cache` sections of the config.
#[derive(Clone, Debug)]
pub struct DeciderOptions {
    /// The package holding `allow` and `deny`, e.g. `data.manufacturing.smart`.
    pub decision: String,
    /// Evaluation time limit; past it the decision is a deny.
    pub eval_timeout: Duration,
    /// Cached verdicts; 0 turns the cache off.
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
}

impl Default for DeciderOptions {
    fn default() -> Self {
        Self {
            decision: "data.manufacturing.smart".into(),
            eval_timeout: Duration::from_millis(50),
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(300),
        }
    }
}

/// The outcome of one decision. Cheap to clone (one reference count).
#[derive(Clone, Debug)]
pub struct Verdict(Arc<VerdictInner>);

#[derive(Debug)]
struct VerdictInner {
    allowed: bool,
    reasons: Vec<String>,
    error: Option<String>,
    generation: u64,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.0.allowed
    }
    /// Why it was denied: the policy's `deny` reasons, or which rule decided.
    pub fn reasons(&self) -> &[String] {
        &self.0.reasons
    }
    /// Set when evaluation failed or timed out (the verdict is then a deny).
    pub fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// The policy generation that produced this verdict.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }
}

/// Counters the telemetry layer exports; updated with relaxed atomics on the hot path, each
/// thread on its own cache line (see [`Counter`]).
#[derive(Debug, Default)]
pub struct DeciderStats {
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub eval_errors: Counter,
    pub eval_timeouts: Counter,
    pub eval_latency: LatencyHistogram,
}

const STRIPES: usize = 8;

/// Which stripe this thread adds to: threads take stripes in turn, so up to `STRIPES` threads
/// never share a cache line.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// One cache line (two on CPUs that fetch lines in pairs) per stripe.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A counter split in stripes: an addition touches only the adding thread's cache line, so
/// decisions on several cores do not bounce one line between them; a read sums the stripes.
#[derive(Debug, Default)]
pub struct Counter {
    stripes: [Padded<AtomicU64>; STRIPES],
}

impl Counter {
    pub fn fetch_add(&self, n: u64, order: Ordering) {
        self.stripes[stripe()].0.fetch_add(n, order);
    }

    pub fn load(&self, order: Ordering) -> u64 {
        self.stripes.iter().map(|s| s.0.load(order)).sum()
    }
}

/// Upper bounds (seconds) of the evaluation latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 5e-3, 2.5e-2, 1e-1,
];

/// A fixed-bucket histogram of evaluation latency, lock-free, striped as [`Counter`] is.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    stripes: [Padded<HistogramStripe>; STRIPES],
}

#[derive(Debug, Default)]
struct HistogramStripe {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        let stripe = &self.stripes[stripe()].0;
        stripe.buckets[idx].fetch_add(1, Ordering::Relaxed);
        stripe.sum_ns.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// (sum in seconds, count, per-bucket counts — not cumulative).
    pub fn snapshot(&self) -> (f64, u64, Vec<u64>) {
        let mut counts = vec![0u64; LATENCY_BUCKETS.len() + 1];
        let mut sum_ns = 0u64;
        for stripe in &self.stripes {
            for (c, b) in counts.iter_mut().zip(&stripe.0.buckets) {
                *c += b.load(Ordering::Relaxed);
            }
            sum_ns = sum_ns.saturating_add(stripe.0.sum_ns.load(Ordering::Relaxed));
        }
        let count = counts.iter().sum();
        (sum_ns as f64 / 1e9, count, counts)
    }
}

/// One compiled policy generation.
struct Generation {
    number: u64,
    /// What each thread compiles its own engine from (see [`Generation::engine`]).
    policy: PolicySet,
    timer: ExecutionTimerConfig,
    /// The engine compiled at load, for the Data API and as the fallback of
    /// [`Generation::engine`]. A mutex because it is only ever cloned, never evaluated.
    template: Mutex<Engine>,
    allow_rule: String,
    /// `None` when the package declares no `deny` rule.
    deny_rule: Option<String>,
    revision: String,
    load_time: Duration,
}

struct CacheEntry {
    input: OwnedInput,
    verdict: Verdict,
    /// When the shared cache expires it (its time to live); the per-thread front obeys it too.
    expires: Instant,
}

type VerdictCache = moka::sync::Cache<u64, Arc<CacheEntry>, BuildHasherDefault<PassThroughHasher>>;

/// See the module docs. Cheap to clone; clones share cache, stats and generation.
#[derive(Clone)]
pub struct Decider {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    opts: DeciderOptions,
    current: RwLock<Arc<Generation>>,
    reload_lock: Mutex<()>,
    generation: AtomicU64,
    cache: Option<VerdictCache>,
    stats: DeciderStats,
    /// Tells open flows that a new generation is in force (they judge themselves again).
    activated: tokio::sync::watch::Sender<u64>,
}

static NEXT_DECIDER_ID: AtomicU64 = AtomicU64::new(1);

struct LocalEngine {
    decider: u64,
    generation: u64,
    engine: Engine,
    /// The generation's rule paths, kept with its engine so that a miss on a thread whose
    /// engine is current takes no lock and touches no shared reference count.
    allow_rule: String,
    deny_rule: Option<String>,
}

thread_local! {
    // A handful of entries at most (one per live Decider that used this thread).
    static ENGINES: RefCell<Vec<LocalEngine>> = const { RefCell::new(Vec::new()) };
    // Per-thread fronts of the shared verdict cache, one per Decider used on this thread.
    static FRONT: RefCell<Vec<(u64, FrontSlots<CacheEntry>)>> = const { RefCell::new(Vec::new()) };
}

/// Deciders whose front a thread keeps; older ones are dropped first.
const MAX_FRONTS_PER_THREAD: usize = 8;

impl Decider {
    /// Compiles `policy` and checks that the decision package exists.
    pub fn new(policy: &PolicySet, opts: DeciderOptions) -> Result<Self, LoadError> {
        Self::with_revision(policy, opts, "")
    }

    /// As [`Decider::new`], naming the revision (a bundle's) of the first generation.
    pub fn with_revision(
        policy: &PolicySet,
        opts: DeciderOptions,
        revision: &str,
    ) -> Result<Self, LoadError> {
        let generation = compile(policy, &opts, 1, revision)?;
        let cache = (opts.cache_capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(opts.cache_capacity)
                .time_to_live(opts.cache_ttl)
                .build_with_hasher(BuildHasherDefault::<PassThroughHasher>::default())
        });
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_DECIDER_ID.fetch_add(1, Ordering::Relaxed),
                opts,
                current: RwLock::new(Arc::new(generation)),
                reload_lock: Mutex::new(()),
                generation: AtomicU64::new(1),
                cache,
                stats: DeciderStats::default(),
                activated: tokio::sync::watch::Sender::new(1),
            }),
        })
    }

    /// Compiles a new policy and makes it current. On error the old generation keeps serving.
    /// Returns the new generation number.
    pub fn reload(&self, policy: &PolicySet, revision: &str) -> Result<u64, LoadError> {
        // Reloads are serialised by their own lock and compile outside the generation lock, so
        // decisions keep running on the old generation for the whole compile.
        let _reloading = self
            .inner
            .reload_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let number = self.current().number + 1;
        let generation = compile(policy, &self.inner.opts, number, revision)?;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(generation);
        // Publish the number only once the generation is in place: a reader that sees the new
        // number and a cached entry of the old one rejects the entry by its key.
        self.inner.generation.store(number, Ordering::Release);
        if let Some(cache) = &self.inner.cache {
            cache.invalidate_all();
        }
        self.inner.activated.send_replace(number);
        Ok(number)
    }

    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Changes each time a new generation is in force; what open flows wait on.
    pub fn activations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.activated.subscribe()
    }

    pub fn revision(&self) -> String {
        self.current().revision.clone()
    }

    /// How long compiling the current generation took.
    pub fn load_time(&self) -> Duration {
        self.current().load_time
    }

    pub fn stats(&self) -> &DeciderStats {
        &self.inner.stats
    }

    pub fn options(&self) -> &DeciderOptions {
        &self.inner.opts
    }

    fn current(&self) -> Arc<Generation> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The verdict for `input`. On a cache hit: one hash, one lookup, no allocation.
    pub fn decide(&self, input: &Input<'_>) -> Verdict {
        let generation = self.generation();
        let key = input.fingerprint(generation);
        if let Some(cache) = &self.inner.cache {
            let valid =
                |e: &CacheEntry| e.verdict.generation() == generation && e.input.matches(input);
            if let Some(verdict) = self.front_get(key, &valid) {
                self.inner.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return verdict;
            }
            if let Some(entry) = cache.get(&key) {
                if valid(&entry) {
                    self.inner.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    let verdict = entry.verdict.clone();
                    self.front_put(key, entry);
                    return verdict;
                }
            }
        }
        self.inner
            .stats
            .cache_misses
            .fetch_add(1, Ordering::Relaxed);
        let verdict = self.evaluate(input);
        if let Some(cache) = &self.inner.cache {
            // Only verdicts of the generation still current are worth keeping; errors are not
            // cached so that a transient failure (a timeout under load) is retried next time.
            // Nor are CONNECTs: each carries its client's own id, so it is judged once per
            // session and an entry would only hold memory for as long as the session lives
            // (about 600 bytes each; 10,000 reconnecting clients cost 0.15 s of evaluation).
            if verdict.error().is_none()
                && verdict.generation() == self.generation()
                && input.operation != super::Operation::Connect
            {
                let key = input.fingerprint(verdict.generation());
                let entry = Arc::new(CacheEntry {
                    input: input.to_owned_input(),
                    verdict: verdict.clone(),
                    expires: Instant::now() + self.inner.opts.cache_ttl,
                });
                cache.insert(key, Arc::clone(&entry));
                self.front_put(key, entry);
            }
        }
        verdict
    }

    fn front_get(&self, key: u64, valid: &dyn Fn(&CacheEntry) -> bool) -> Option<Verdict> {
        FRONT.with(|cell| {
            let fronts = cell.try_borrow().ok()?;
            let (_, slots) = fronts.iter().find(|(id, _)| *id == self.inner.id)?;
            let entry = slots.get(key)?;
            valid(entry).then(|| entry.verdict.clone())
        })
    }

    fn front_put(&self, key: u64, entry: Arc<CacheEntry>) {
        FRONT.with(|cell| {
            let Ok(mut fronts) = cell.try_borrow_mut() else {
                return;
            };
            let i = match fronts.iter().position(|(id, _)| *id == self.inner.id) {
                Some(i) => i,
                None => {
                    if fronts.len() >= MAX_FRONTS_PER_THREAD {
                        fronts.remove(0);
                    }
                    fronts.push((self.inner.id, FrontSlots::default()));
                    fronts.len() - 1
                }
            };
            let expires = entry.expires;
            fronts[i].1.put(key, entry, expires);
        });
    }

    /// Evaluates a document reference (`data.a.b`) with an optional JSON input on a clone of the
    /// current generation's engine, outside the cache and the per-thread engines: for the
    /// OPA-compatible Data API of the admin endpoint. `Ok(None)` when the document is undefined.
    pub fn query_document(
        &self,
        reference: &str,
        input: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, QueryError> {
        let mut engine = self
            .current()
            .template
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(input) = input {
            let value = regorus::Value::from_json_str(&input.to_string())
                .map_err(|e| QueryError(super::loader::one_line(&e.to_string())))?;
            engine.set_input(value);
        }
        let results = engine
            .eval_query(reference.to_string(), false)
            .map_err(|e| QueryError(super::loader::one_line(&e.to_string())))?;
        let Some(value) = results
            .result
            .first()
            .and_then(|r| r.expressions.first())
            .map(|e| &e.value)
        else {
            return Ok(None);
        };
        if *value == regorus::Value::Undefined {
            return Ok(None);
        }
        let text = value
            .to_json_str()
            .map_err(|e| QueryError(super::loader::one_line(&e.to_string())))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| QueryError(e.to_string()))
    }

    /// Evaluates without the cache (used by benchmarks and by the cache's own tests).
    pub fn decide_uncached(&self, input: &Input<'_>) -> Verdict {
        self.evaluate(input)
    }

    /// Evaluates on this thread's clone of the current generation's engine, cloning it first
    /// when the thread has none or an older one.
    fn evaluate(&self, input: &Input<'_>) -> Verdict {
        let started = Instant::now();
        let wanted = self.generation();
        let (outcome, number) = ENGINES.with(|cell| {
            let mut engines = cell.borrow_mut();
            let slot = match engines.iter().position(|e| e.decider == self.inner.id) {
                Some(i) => i,
                None => {
                    // Generation 0 never exists: the clone below replaces this placeholder.
                    engines.push(LocalEngine {
                        decider: self.inner.id,
                        generation: 0,
                        engine: super::engine::EngineSetup::new(false).engine(),
                        allow_rule: String::new(),
                        deny_rule: None,
                    });
                    engines.len() - 1
                }
            };
            let local = &mut engines[slot];
            if local.generation != wanted {
                // A reload may have gone further since `wanted` was read: take what is current.
                let generation = self.current();
                local.engine = generation.engine();
                local.generation = generation.number;
                local.allow_rule.clone_from(&generation.allow_rule);
                local.deny_rule.clone_from(&generation.deny_rule);
            }
            let LocalEngine {
                engine,
                allow_rule,
                deny_rule,
                generation,
                ..
            } = local;
            (
                run(engine, allow_rule, deny_rule.as_deref(), input),
                *generation,
            )
        });
        self.inner.stats.eval_latency.observe(started.elapsed());
        let (allowed, reasons, error) = match outcome {
            Ok((allowed, reasons)) => (allowed, reasons, None),
            Err(e) => {
                if e.contains("exceeded time limit") {
                    self.inner
                        .stats
                        .eval_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    self.inner.stats.eval_errors.fetch_add(1, Ordering::Relaxed);
                }
                (
                    false,
                    vec![format!("policy evaluation failed: {e}")],
                    Some(e),
                )
            }
        };
        Verdict(Arc::new(VerdictInner {
            allowed,
            reasons,
            error,
            generation: number,
        }))
    }
}

/// Evaluates `allow` and `deny` and applies the verdict rules of DESIGN.md:
/// allowed only when `allow` is `true` and `deny` is neither `true` nor a non-empty set.
fn run(
    engine: &mut Engine,
    allow_rule: &str,
    deny_rule: Option<&str>,
    input: &Input<'_>,
) -> Result<(bool, Vec<String>), String> {
    use regorus::Value;
    engine.set_input(input.to_value());
    // Both rules in one evaluation state (regorus patch 7): one set-up instead of two.
    let rules = [allow_rule, deny_rule.unwrap_or_default()];
    let rules = if deny_rule.is_some() {
        &rules[..]
    } else {
        &rules[..1]
    };
    let mut values = engine
        .eval_rules(rules)
        .map_err(|e| super::loader::one_line(&e.to_string()))?
        .into_iter();
    let allow = values.next().unwrap_or(Value::Undefined);
    let mut reasons = Vec::new();
    let denied = match deny_rule {
        None => false,
        Some(rule) => match values.next().unwrap_or(Value::Undefined) {
            Value::Bool(b) => {
                if b {
                    reasons.push(format!("{rule} is true"));
                }
                b
            }
            Value::Undefined | Value::Null => false,
            Value::Set(s) => {
                reasons.extend(s.iter().map(reason_text));
                !s.is_empty()
            }
            Value::Array(a) => {
                reasons.extend(a.iter().map(reason_text));
                !a.is_empty()
            }
            // Anything else (a number, an object) is a policy mistake: deny, say so.
            other => {
                return Err(format!(
                    "{rule} must be a boolean or a set of reasons, got {}",
                    reason_text(&other)
                ));
            }
        },
    };
    let allowed = match allow {
        Value::Bool(b) => b,
        Value::Undefined => false,
        other => {
            return Err(format!(
                "{allow_rule} must be a boolean, got {}",
                reason_text(&other)
            ));
        }
    };
    if !allowed && !denied {
        reasons.push(format!("{allow_rule} is not true"));
    }
    Ok((allowed && !denied, reasons))
}

fn reason_text(v: &regorus::Value) -> String {
    match v {
        regorus::Value::String(s) => s.to_string(),
        other => other.to_json_str().unwrap_or_else(|_| "?".into()),
    }
}

fn compile(
    policy: &PolicySet,
    opts: &DeciderOptions,
    number: u64,
    revision: &str,
) -> Result<Generation, LoadError> {
    let started = Instant::now();
    let mut engine = policy.engine()?;
    let package = opts.decision.trim_end_matches('.').to_string();
    if !package.starts_with("data.") {
        return Err(LoadError::new(
            "",
            format!(
                "policy.decision must name a package under data, like data.manufacturing.smart; got {package:?}"
            ),
        ));
    }
    let rules = declared_rules(&mut engine);
    let in_package: Vec<_> = rules.iter().filter(|r| r.package == package).collect();
    if in_package.is_empty() {
        return Err(LoadError::new(
            "",
            format!("decision package {package} is not defined by any loaded policy"),
        ));
    }
    let has = |name: &str| in_package.iter().any(|r| r.name == name && !r.function);
    if !has("allow") {
        return Err(LoadError::new(
            "",
            format!("decision package {package} has no allow rule; every request would be denied"),
        ));
    }
    let deny_rule = has("deny").then(|| format!("{package}.deny"));
    let timer = ExecutionTimerConfig {
        limit: opts.eval_timeout,
        // Check the clock every 64 work units: cheap, and far finer than any sane timeout.
        check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
    };
    engine.set_execution_timer_config(timer);
    Ok(Generation {
        number,
        policy: policy.clone(),
        timer,
        template: Mutex::new(engine),
        allow_rule: format!("{package}.allow"),
        deny_rule,
        revision: revision.to_string(),
        load_time: started.elapsed(),
    })
}

impl Generation {
    /// A thread's own engine: compiled again from the policy rather than cloned from the
    /// template, because a clone shares the template's syntax tree and data through reference
    /// counts that every evaluation touches, so threads evaluating clones bounce those counts'
    /// cache lines between cores (2 threads gave 0.9x one thread's misses/s). Costs one compile
    /// per thread per generation, and the policy's data once per thread.
    fn engine(&self) -> Engine {
        match self.policy.engine() {
            Ok(mut engine) => {
                engine.set_execution_timer_config(self.timer);
                engine
            }
            // It compiled at load, so this does not happen; the clone is still correct.
            Err(_) => self
                .template
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl std::fmt::Debug for Decider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decider")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}
