//! Decision latency and CLI cold start, each against its baseline measured in the same run.
//!
//! - cache hit: `Decider::decide` on a warm cache (budget ≤ 150 ns)
//! - cache miss: `Decider::decide_uncached` (budget ≤ 5 µs), against raw regorus
//!   (`set_input` + `eval_rule` of allow and deny on a clone of the same compiled engine)
//! - cold start: whole-process wall time (median) of `sluice check policies/` and
//!   `sluice eval -d policies ...` against `examples/regorus_load` (budget ≤ 5 ms)
//!
//! Run: `cargo build --release --example regorus_load && cargo bench --bench decision`
//! (the bench builds the example itself when it is missing).

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice::policy::{
    Decider, DeciderOptions, Input, MqttFacts, Operation, PolicySet, Protocol, Source, Target, Zone,
};

fn source() -> Source {
    Source {
        workload: "iot-data-processor".into(),
        namespace: "line-1".into(),
        node: "edge-17".into(),
        site: "plant-042".into(),
        client_id: "press-7".into(),
        username: "press-7".into(),
    }
}

fn input(src: &Source) -> Input<'_> {
    Input {
        protocol: Protocol::Mqtt,
        operation: Operation::Publish,
        source: src,
        target: Target {
            host: "broker.plant.local",
            port: 1883,
            ip: Some([10, 4, 0, 9].into()),
            zone: Zone::Local,
        },
        mqtt: Some(MqttFacts {
            topic: "plant/line1/press7/temp",
            qos: 1,
            retain: false,
        }),
        http: None,
    }
}

/// Best of `rounds` rounds of `iters` calls, in ns per call (the minimum filters out the
/// other processes sharing the machine).
fn ns_per_op(rounds: usize, iters: u32, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(iters));
    }
    best
}

fn median_wall(runs: usize, cmd: &mut dyn FnMut() -> Command) -> Option<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut c = cmd();
        let t = Instant::now();
        let status = c.status().ok()?;
        let elapsed = t.elapsed();
        if !status.success() {
            return None;
        }
        times.push(elapsed);
    }
    times.sort();
    times.get(runs / 2).copied()
}

fn baseline_program(root: &Path) -> Option<PathBuf> {
    let exe = root.join("target/release/examples/regorus_load");
    if !exe.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--release", "--example", "regorus_load"])
            .current_dir(root)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
    }
    exe.exists().then_some(exe)
}

fn main() {
    let set = PolicySet::embedded();
    let src = source();
    let inp = input(&src);

    // Decisions on the shipped seed policy.
    let opts = DeciderOptions::default();
    let decider = match Decider::new(&set, opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("policy: {e}");
            std::process::exit(1);
        }
    };
    assert!(decider.decide(&inp).allowed());
    // `DECISION_PROFILE=miss cargo bench --bench decision` only evaluates 20,000 misses: a
    // clean loop to run under perf or callgrind (instructions per miss = total / 20,000).
    if std::env::var("DECISION_PROFILE").is_ok_and(|v| v == "miss") {
        let t = Instant::now();
        for _ in 0..20_000 {
            black_box(decider.decide_uncached(black_box(&inp)));
        }
        println!("20000 misses in {:?}", t.elapsed());
        return;
    }
    let hit = ns_per_op(15, 200_000, || {
        black_box(decider.decide(black_box(&inp)));
    });
    let miss = ns_per_op(9, 5_000, || {
        black_box(decider.decide_uncached(black_box(&inp)));
    });

    // Raw regorus, same compiled policy and input: what a miss cannot go below.
    let mut engine = match set.engine() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("policy: {e}");
            std::process::exit(1);
        }
    };
    let raw = ns_per_op(9, 5_000, || {
        engine.set_input(inp.to_value());
        let a = engine.eval_rule("data.manufacturing.smart.allow".to_string());
        let d = engine.eval_rule("data.manufacturing.smart.deny".to_string());
        black_box((a.is_ok(), d.is_ok()));
    });
    // The hit path's floor: hashing the input.
    let hash = ns_per_op(15, 1_000_000, || {
        black_box(black_box(&inp).fingerprint(1));
    });

    // What one shared-cache (moka) lookup costs, for comparison with the hit path.
    let moka: moka::sync::Cache<u64, std::sync::Arc<u64>, _> = moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(300))
        .build_with_hasher(std::hash::BuildHasherDefault::<
            sluice::policy::input::PassThroughHasher,
        >::default());
    let key = inp.fingerprint(1);
    moka.insert(key, std::sync::Arc::new(1));
    let moka_get = ns_per_op(15, 200_000, || {
        black_box(moka.get(black_box(&key)));
    });

    // Misses on 1 and 2 threads: each thread evaluates on its own clone of the compiled
    // engine, so throughput should grow with cores (budget: 2 threads >= 1.8x one).
    let scaling = |threads: usize| -> f64 {
        const PER_THREAD: u32 = 20_000;
        let mut best = 0.0f64;
        for _ in 0..5 {
            let barrier = std::sync::Barrier::new(threads);
            let t = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        let src = source();
                        let inp = input(&src);
                        black_box(decider.decide_uncached(&inp));
                        barrier.wait();
                        for _ in 0..PER_THREAD {
                            black_box(decider.decide_uncached(black_box(&inp)));
                        }
                    });
                }
            });
            let per_s = (threads as f64 * f64::from(PER_THREAD)) / t.elapsed().as_secs_f64();
            best = best.max(per_s);
        }
        best
    };
    let one = scaling(1);
    let two = scaling(2);

    println!("decision (shipped policy, MQTT publish input)");
    println!(
        "  cache hit      {hit:>9.1} ns/op   budget 150 ns   (input fingerprint alone {hash:.1} ns)"
    );
    println!("  moka get alone {moka_get:>9.1} ns/op   (one shared-cache lookup, for comparison)");
    println!("  cache miss     {miss:>9.1} ns/op   budget 5000 ns");
    println!("  raw regorus    {raw:>9.1} ns/op   (set_input + eval_rule allow + deny)");
    println!("  miss / raw     {:>9.2}x", miss / raw);
    println!("  raw / hit      {:>9.1}x", raw / hit);
    println!(
        "  misses/s       1 thread {one:>9.0}   2 threads {two:>9.0}   scaling {:.2}x   budget 1.8x",
        two / one
    );
    common::budget_row(
        "decision, cache hit",
        &format!("{hit:.0} ns"),
        &format!("moka get alone {moka_get:.0} ns"),
        &format!("{:.2}x", hit / moka_get),
        "≤ 150 ns",
        hit <= 150.0,
    );
    common::budget_row(
        "decision, cache miss (shipped policy)",
        &format!("{:.2} µs", miss / 1e3),
        &format!("raw regorus allow + deny {:.2} µs", raw / 1e3),
        &format!("{:.2}x", miss / raw),
        "≤ 5 µs",
        miss <= 5_000.0,
    );
    common::budget_row(
        "decisions (misses) on 2 threads",
        &format!("{two:.0}/s"),
        &format!("1 thread {one:.0}/s"),
        &format!("{:.2}x", two / one),
        "≥ 1.8x",
        two / one >= 1.8,
    );

    // Cold start of the CLI against a program that only loads the same policies.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sluice = PathBuf::from(env!("CARGO_BIN_EXE_sluice"));
    let input_file = root.join("fixtures/policy/inputs/local.json");
    const RUNS: usize = 31;
    // Every program here runs without the caller's backtrace settings, so each gets the same
    // environment whatever the shell has.
    let plain = |program: &Path| {
        let mut c = Command::new(program);
        c.env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .current_dir(root);
        c
    };
    let check = median_wall(RUNS, &mut || {
        let mut c = plain(&sluice);
        c.args(["check", "policies/"]);
        c
    });
    // As a pod with RUST_BACKTRACE=1 runs it: error values (regorus's parser backtracks
    // through them) must not capture backtraces then (src/main.rs), so this is the same time.
    let check_backtraces = median_wall(RUNS, &mut || {
        let mut c = plain(&sluice);
        c.args(["check", "policies/"]).env("RUST_BACKTRACE", "1");
        c
    });
    let eval = median_wall(RUNS, &mut || {
        let mut c = plain(&sluice);
        c.args([
            "eval",
            "-d",
            "policies",
            "data.manufacturing.smart.allow",
            "-i",
        ])
        .arg(&input_file)
        .stdout(std::process::Stdio::null());
        c
    });
    let base = baseline_program(root).and_then(|exe| {
        median_wall(RUNS, &mut || {
            let mut c = plain(&exe);
            c.arg("policies/");
            c
        })
    });
    let ms = |d: Option<Duration>| {
        d.map_or("failed".to_string(), |d| {
            format!("{:.2} ms", d.as_secs_f64() * 1e3)
        })
    };
    println!("cold start, whole process, median of {RUNS} runs");
    println!(
        "  sluice check policies/                 {:>10}   budget 5 ms",
        ms(check)
    );
    println!(
        "  sluice eval -d policies ... -i input   {:>10}   budget 5 ms",
        ms(eval)
    );
    println!(
        "  sluice check, RUST_BACKTRACE=1         {:>10}   (same as without: no backtraces for errors)",
        ms(check_backtraces)
    );
    println!("  regorus_load policies/ (baseline)      {:>10}", ms(base));
    if let (Some(c), Some(e), Some(b)) = (check, eval, base) {
        let (c, e, b) = (c.as_secs_f64(), e.as_secs_f64(), b.as_secs_f64());
        println!(
            "  check / baseline {:.2}x   eval / baseline {:.2}x",
            c / b,
            e / b
        );
        common::budget_row(
            "cold start, `sluice eval` (exec to exit)",
            &format!("{:.2} ms", e * 1e3),
            &format!("bare regorus loader {:.2} ms", b * 1e3),
            &format!("{:.2}x", e / b),
            "≤ 1.2x",
            e / b <= 1.2,
        );
        common::budget_row(
            "cold start, `sluice check policies/`",
            &format!("{:.2} ms", c * 1e3),
            &format!("bare regorus loader {:.2} ms", b * 1e3),
            &format!("{:.2}x", c / b),
            "≤ 5 ms",
            c <= 0.005,
        );
    }
}
