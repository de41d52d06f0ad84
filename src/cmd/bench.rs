//! `sluice bench`: benchmarks Gatekeeper templates like `gator bench` (same flags, same table,
//! P50/P95/P99 per review), so that authors can compare the two engines on their own templates.
//!
//! Every object found under `--filename` (anything that is not a template, a constraint or a
//! suite) is reviewed as a CREATE against every constraint, `--iterations` times after
//! `--warmup` rounds, on `--concurrency` threads. Not here: the review itself (admission).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::admission::constraints::is_constraint;
use crate::admission::inventory::Inventory;
use crate::admission::manifests::{self, Document};
use crate::admission::policies::Policies;
use crate::admission::review::{prepare, request_for_object};
use crate::admission::templates::{self, is_template};

const HELP: &str = "\
Only the rego engine exists in sluice (CEL templates cannot be enforced here), so --engine
defaults to rego; cel and all are refused. Objects are the documents under --filename that are
neither ConstraintTemplates, constraints nor test suites.

Exit codes: 0 the benchmark ran; 1 a usage or load error, or a regression past --threshold
with --compare (as gator).

Examples:
  sluice bench -f policies/gatekeeper -f fixtures/gatekeeper/library/samples
  sluice bench -f policies/ -n 5000 --concurrency 2 -o json
  sluice bench -f policies/ --save baseline.json
  sluice bench -f policies/ --compare baseline.json --threshold 10 --min-threshold 100us";

/// Output formats, as gator's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// Engines gator knows; sluice evaluates Rego only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchEngine {
    Rego,
    Cel,
    All,
}

/// Benchmarks ConstraintTemplates and constraints against objects, like `gator bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct BenchArgs {
    /// File or directory with ConstraintTemplates, constraints and objects; repeatable
    #[arg(short, long = "filename", value_name = "PATH", required = true)]
    pub filename: Vec<PathBuf>,
    /// Policy engine: rego (cel and all are gator's; sluice has no CEL engine)
    #[arg(short, long, value_enum, default_value = "rego")]
    pub engine: BenchEngine,
    /// Measured iterations (each reviews every object)
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub iterations: usize,
    /// Iterations run before measuring
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Threads reviewing in parallel
    #[arg(short, long, default_value_t = 1)]
    pub concurrency: usize,
    /// table, json or yaml
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
    /// Write the results to this file as a baseline for --compare
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Compare with a baseline written by --save; exit 1 on a regression
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,
    /// Regression threshold in percent, for --compare
    #[arg(long, default_value_t = 10.0)]
    pub threshold: f64,
    /// Latency differences below this never count as a regression, e.g. 100us
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub min_threshold: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let s = s.replace("µs", "us");
    crate::config::parse_duration(&s).map_err(|e| e.to_string())
}

/// One run's figures (nanoseconds for durations).
struct Results {
    templates: usize,
    constraints: usize,
    objects: usize,
    iterations: usize,
    concurrency: usize,
    compile: Duration,
    constraints_load: Duration,
    total: Duration,
    latencies: Vec<Duration>,
    violations: usize,
}

pub fn run(args: BenchArgs) -> i32 {
    if args.engine != BenchEngine::Rego {
        let name = if args.engine == BenchEngine::Cel {
            "cel"
        } else {
            "all"
        };
        eprintln!("--engine {name}: sluice has only the rego engine (use --engine rego)");
        return 1;
    }
    if args.iterations == 0 || args.concurrency == 0 {
        eprintln!("--iterations and --concurrency must be at least 1");
        return 1;
    }
    let results = match measure(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let doc = results.to_json();
    let text = match args.output {
        Output::Table => results.table(),
        Output::Json => serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
        Output::Yaml => yaml(&doc, 0),
    };
    print!("{text}");
    if let Some(path) = &args.save {
        let body = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(path, body) {
            eprintln!("{}: {}", path.display(), manifests::reason(&e));
            return 1;
        }
    }
    match &args.compare {
        Some(path) => compare(path, &doc, args.threshold, args.min_threshold),
        None => 0,
    }
}

fn measure(args: &BenchArgs) -> Result<Results, String> {
    let mut docs: Vec<Document> = Vec::new();
    for p in &args.filename {
        for f in manifests::files_under(p).map_err(|e| e.to_string())? {
            docs.extend(manifests::read_file(&f).map_err(|e| e.to_string())?);
        }
    }
    let objects: Vec<Json> = docs
        .iter()
        .filter(|d| !is_template(d) && !is_constraint(d) && d.group() != "test.gatekeeper.sh")
        .map(|d| request_for_object(&d.body))
        .map(prepare)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if objects.is_empty() {
        return Err("no objects to review under the given --filename paths".into());
    }
    let started = Instant::now();
    let mut compiled = Vec::new();
    let mut failed = Vec::new();
    for d in docs.iter().filter(|d| is_template(d)) {
        match templates::compile(d) {
            Ok(t) => compiled.push(t),
            Err(e) => failed.push(e),
        }
    }
    let compile = started.elapsed();
    let loaded = Instant::now();
    let template_count = compiled.len();
    let constraint_docs: Vec<&Document> = docs.iter().filter(|d| is_constraint(d)).collect();
    let policies = Policies::assemble(compiled, failed, &constraint_docs, Inventory::new());
    let constraints_load = loaded.elapsed();
    if let Some(p) = policies.problems.first() {
        return Err(p.to_string());
    }
    for _ in 0..args.warmup {
        for o in &objects {
            std::hint::black_box(policies.review(o));
        }
    }
    let per_thread = args.iterations.div_ceil(args.concurrency);
    let began = Instant::now();
    let runs: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.concurrency)
            .map(|t| {
                let rounds = per_thread.min(args.iterations.saturating_sub(t * per_thread));
                let (policies, objects) = (&policies, &objects);
                scope.spawn(move || {
                    let mut lat = Vec::with_capacity(rounds * objects.len());
                    let mut violations = 0;
                    for _ in 0..rounds {
                        for o in objects {
                            let one = Instant::now();
                            violations += policies.review(o).len();
                            lat.push(one.elapsed());
                        }
                    }
                    (lat, violations)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let total = began.elapsed();
    let mut latencies: Vec<Duration> = runs.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    latencies.sort_unstable();
    Ok(Results {
        templates: template_count,
        constraints: policies.constraints.len(),
        objects: objects.len(),
        iterations: args.iterations,
        concurrency: args.concurrency,
        compile,
        constraints_load,
        total,
        violations: runs.iter().map(|(_, v)| v).sum(),
        latencies,
    })
}

impl Results {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn mean(&self) -> Duration {
        let n = self.latencies.len().max(1) as u32;
        self.latencies.iter().sum::<Duration>() / n
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.total.as_secs_f64().max(1e-9)
    }

    fn table(&self) -> String {
        let mut out = String::from("=== Benchmark Results: Rego Engine ===\n\nConfiguration:\n");
        out += &format!("  Templates:      {}\n", self.templates);
        out += &format!("  Constraints:    {}\n", self.constraints);
        out += &format!("  Objects:        {}\n", self.objects);
        out += &format!("  Iterations:     {}\n", self.iterations);
        if self.concurrency > 1 {
            out += &format!("  Concurrency:    {}\n", self.concurrency);
        }
        out += &format!("  Total Reviews:  {}\n\nTiming:\n", self.latencies.len());
        out += &format!(
            "  Setup Duration:  {}\n",
            go(self.compile + self.constraints_load)
        );
        out += &format!("    └─ Template Compilation:  {}\n", go(self.compile));
        out += &format!(
            "    └─ Constraint Loading:    {}\n",
            go(self.constraints_load)
        );
        out += &format!("  Total Duration:  {}\n", go(self.total));
        out += &format!(
            "  Throughput:      {:.2} reviews/sec\n\n",
            self.throughput()
        );
        out += "Latency (per review):\n";
        let first = self.latencies.first().copied().unwrap_or_default();
        let last = self.latencies.last().copied().unwrap_or_default();
        out += &format!("  Min:   {}\n  Max:   {}\n", go(first), go(last));
        out += &format!("  Mean:  {}\n", go(self.mean()));
        for (name, p) in [("P50", 50.0), ("P95", 95.0), ("P99", 99.0)] {
            out += &format!("  {name}:   {}\n", go(self.percentile(p)));
        }
        out += &format!("\nResults:\n  Violations Found:  {}\n", self.violations);
        out
    }

    fn to_json(&self) -> Json {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        json!({
            "engine": "rego",
            "templateCount": self.templates,
            "constraintCount": self.constraints,
            "objectCount": self.objects,
            "iterations": self.iterations,
            "concurrency": self.concurrency,
            "totalReviews": self.latencies.len(),
            "setupDuration": ns(self.compile + self.constraints_load),
            "setupBreakdown": {
                "templateCompilation": ns(self.compile),
                "constraintLoading": ns(self.constraints_load),
            },
            "totalDuration": ns(self.total),
            "reviewsPerSecond": self.throughput(),
            "latencies": {
                "min": ns(self.latencies.first().copied().unwrap_or_default()),
                "max": ns(self.latencies.last().copied().unwrap_or_default()),
                "mean": ns(self.mean()),
                "p50": ns(self.percentile(50.0)),
                "p95": ns(self.percentile(95.0)),
                "p99": ns(self.percentile(99.0)),
            },
            "violationCount": self.violations,
        })
    }
}

/// A duration as gator prints it: two decimals in the largest unit below the value.
fn go(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    match ns {
        n if n < 1e3 => format!("{n:.2}ns"),
        n if n < 1e6 => format!("{:.2}µs", n / 1e3),
        n if n < 1e9 => format!("{:.2}ms", n / 1e6),
        n => format!("{:.2}s", n / 1e9),
    }
}

/// A JSON document of objects and scalars as block YAML.
fn yaml(v: &Json, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    if let Json::Object(map) = v {
        for (k, v) in map {
            match v {
                Json::Object(_) => out += &format!("{pad}{k}:\n{}", yaml(v, indent + 2)),
                other => out += &format!("{pad}{k}: {other}\n"),
            }
        }
    }
    out
}

/// gator's regression check: a latency is a regression past `threshold` percent, unless the
/// difference is under `min`; throughput is one when it falls by more than `threshold` percent.
fn compare(path: &PathBuf, current: &Json, threshold: f64, min: Duration) -> i32 {
    let baseline: Json = match std::fs::read_to_string(path)
        .map_err(|e| manifests::reason(&e))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return 1;
        }
    };
    println!("\n=== Baseline Comparison: Rego Engine ===\n");
    println!("Metric         Baseline     Current      Delta   Status");
    println!("------         --------     -------      -----   ------");
    let mut failed = false;
    for (label, key) in [
        ("P50 Latency", "p50"),
        ("P95 Latency", "p95"),
        ("P99 Latency", "p99"),
        ("Mean Latency", "mean"),
    ] {
        let get = |doc: &Json| {
            doc.pointer(&format!("/latencies/{key}"))
                .and_then(Json::as_u64)
        };
        let (Some(b), Some(c)) = (get(&baseline), get(current)) else {
            continue;
        };
        let delta = (c as f64 - b as f64) / (b as f64).max(1.0) * 100.0;
        let small = c.abs_diff(b) < u64::try_from(min.as_nanos()).unwrap_or(u64::MAX);
        let ok = delta <= threshold || small;
        failed |= !ok;
        let (b, c) = (go(Duration::from_nanos(b)), go(Duration::from_nanos(c)));
        println!(
            "{label:<15}{b:<13}{c:<13}{delta:+.1}%   {}",
            if ok { "✓" } else { "✗" }
        );
    }
    let rps = |doc: &Json| doc.get("reviewsPerSecond").and_then(Json::as_f64);
    if let (Some(b), Some(c)) = (rps(&baseline), rps(current)) {
        let delta = (c - b) / b.max(1e-9) * 100.0;
        let ok = delta >= -threshold;
        failed |= !ok;
        let (b, c) = (format!("{b:.0}/sec"), format!("{c:.0}/sec"));
        println!(
            "{:<15}{b:<13}{c:<13}{delta:+.1}%   {}",
            "Throughput",
            if ok { "✓" } else { "✗" }
        );
    }
    if failed {
        println!("\n✗ Performance regression detected (threshold: {threshold:.1}%)");
        1
    } else {
        println!("\n✓ No significant regressions (threshold: {threshold:.1}%)");
        0
    }
}
