//! `sim`: run seeds of the deterministic simulator and report EVS violations.
//!
//! ```text
//! sim --seeds N [--start S] [--nodes A..B] [--keep-going] [--threads T] [--verbose]
//! sim --seed S [--nodes A..B] [--trace]
//! sim --check-determinism --seed S [--nodes A..B]
//! ```
//!
//! `--plant safe-as-agreed | skip-transitional | drop-recovered | duplicate-delivery` plants
//! a known bug in every ring (the checker's own proof: it must then report violations).
//!
//! `--nodes A..B` is inclusive (default 2..16); the node count of a seed depends on it, so a
//! reproduction must repeat it. Without `--keep-going` a multi-seed run stops at the first
//! failing seed. The last line is always `sim: N seeds, V violations`; the exit status is 1
//! when V > 0. Seeds run on `--threads` workers (default: up to 2) and are reported in seed
//! order, so the output does not depend on the thread count (wall times aside).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant as WallClock;

use sim::driver::{RunOptions, RunResult, Sim};
use sim::{Property, Scenario};
use totem_proto::time::Duration;
use totem_ring::PlantedBug;

const DEFAULT_NODES: (usize, usize) = (2, 16);

#[derive(Debug)]
struct Args {
    seeds: Option<u64>,
    seed: Option<u64>,
    start: u64,
    nodes: (usize, usize),
    trace: bool,
    determinism: bool,
    keep_going: bool,
    verbose: bool,
    threads: usize,
    plant: Option<PlantedBug>,
    accelerated: bool,
    no_fast_fail: bool,
    adaptive_rto: bool,
}

fn usage() -> &'static str {
    "usage: sim --seeds N [--start S] [--nodes A..B] [--keep-going] [--threads T] [--verbose]\n       \
     sim --seed S [--nodes A..B] [--trace]\n       \
     sim --check-determinism --seed S [--nodes A..B]\n       \
     (any of them: --plant safe-as-agreed|skip-transitional|drop-recovered|duplicate-delivery,\n        \
     --accelerated (Accelerated Ring), --no-fast-fail (corosync's consensus wait),\n        \
     --no-adaptive-rto (corosync's fixed token_retransmit; --adaptive-rto is the default))"
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seeds: None,
        seed: None,
        start: 0,
        nodes: DEFAULT_NODES,
        trace: false,
        determinism: false,
        keep_going: false,
        verbose: false,
        plant: None,
        accelerated: false,
        no_fast_fail: false,
        adaptive_rto: true,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, what: &str| -> Result<u64, String> {
        v.ok_or_else(|| format!("{what} needs a value"))?
            .parse()
            .map_err(|e| format!("{what}: {e}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seeds" => a.seeds = Some(num(it.next(), "--seeds")?),
            "--seed" => a.seed = Some(num(it.next(), "--seed")?),
            "--start" => a.start = num(it.next(), "--start")?,
            "--threads" => a.threads = num(it.next(), "--threads")?.max(1) as usize,
            "--nodes" => {
                let v = it.next().ok_or("--nodes needs A..B")?;
                let (lo, hi) = v.split_once("..").ok_or("--nodes needs A..B")?;
                let hi = hi.trim_start_matches('=');
                let lo: usize = lo.parse().map_err(|e| format!("--nodes: {e}"))?;
                let hi: usize = hi.parse().map_err(|e| format!("--nodes: {e}"))?;
                if lo < 1 || hi < lo || hi > 64 {
                    return Err("--nodes: need 1 <= A <= B <= 64".into());
                }
                a.nodes = (lo, hi);
            }
            "--trace" => a.trace = true,
            "--check-determinism" => a.determinism = true,
            "--keep-going" => a.keep_going = true,
            "--verbose" => a.verbose = true,
            "--accelerated" => a.accelerated = true,
            "--no-fast-fail" => a.no_fast_fail = true,
            "--adaptive-rto" => a.adaptive_rto = true,
            "--no-adaptive-rto" => a.adaptive_rto = false,
            "--plant" => {
                a.plant = Some(match it.next().as_deref() {
                    Some("safe-as-agreed") => PlantedBug::SafeAsAgreed,
                    Some("skip-transitional") => PlantedBug::SkipTransitional,
                    Some("drop-recovered") => PlantedBug::DropRecovered,
                    Some("duplicate-delivery") => PlantedBug::DuplicateDelivery,
                    _ => {
                        return Err("--plant needs safe-as-agreed | skip-transitional | \
                                    drop-recovered | duplicate-delivery"
                            .into());
                    }
                });
            }
            "-h" | "--help" => return Err(usage().into()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if a.seeds.is_none() && a.seed.is_none() {
        return Err(usage().into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let violations = if args.determinism {
        determinism(&args)
    } else if let Some(seed) = args.seed {
        one(&args, seed)
    } else {
        many(&args)
    };
    if violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn scenario(args: &Args, seed: u64) -> Scenario {
    let mut sc = Scenario::from_seed(seed, args.nodes.0..=args.nodes.1);
    sc.bug = args.plant;
    sc.accelerated = args.accelerated;
    sc.fast_fail = !args.no_fast_fail;
    sc.adaptive_rto = args.adaptive_rto;
    sc
}

fn plant_name(b: PlantedBug) -> &'static str {
    match b {
        PlantedBug::SafeAsAgreed => "safe-as-agreed",
        PlantedBug::SkipTransitional => "skip-transitional",
        PlantedBug::DropRecovered => "drop-recovered",
        PlantedBug::DuplicateDelivery => "duplicate-delivery",
    }
}

fn reproduce(args: &Args, seed: u64) -> String {
    let mut s = format!("REPRODUCE WITH: cargo xtask sim --seed {seed} --trace");
    if args.nodes != DEFAULT_NODES {
        s.push_str(&format!(" --nodes {}..{}", args.nodes.0, args.nodes.1));
    }
    if let Some(b) = args.plant {
        s.push_str(&format!(" --plant {}", plant_name(b)));
    }
    if args.accelerated {
        s.push_str(" --accelerated");
    }
    if args.no_fast_fail {
        s.push_str(" --no-fast-fail");
    }
    if !args.adaptive_rto {
        s.push_str(" --no-adaptive-rto");
    }
    s
}

/// Prints a failing seed's report.
fn report_failure(args: &Args, r: &RunResult) {
    let seed = r.scenario.seed;
    println!("FAIL seed {seed}: {} violation(s)", r.found);
    println!("  {}", r.scenario.describe());
    let counts: Vec<String> = r
        .by_property
        .iter()
        .filter(|(_, k)| *k > 0)
        .map(|(p, k)| format!("{p} {k}"))
        .collect();
    println!("  by property: {}", counts.join(", "));
    for v in r.violations.iter().take(5) {
        println!("  {v}");
    }
    if r.found > 5 {
        println!("  … and {} more", r.found - 5);
    }
    if !r.context.is_empty() {
        println!("  first offending events (as the first violation was found):");
        for l in &r.context {
            println!("  {l}");
        }
    }
    println!("{}", reproduce(args, seed));
}

fn one(args: &Args, seed: u64) -> usize {
    let opts = RunOptions {
        print_trace: args.trace,
        ..RunOptions::default()
    };
    let t0 = WallClock::now();
    let r = Sim::run(scenario(args, seed), opts);
    let wall = t0.elapsed();
    if r.found > 0 {
        report_failure(args, &r);
    } else {
        println!("ok {}", r.scenario.describe());
    }
    for (at, f) in &r.scenario.faults {
        println!("  fault at {}: {f}", secs(*at));
    }
    print_run_stats(&r);
    println!(
        "re-convergence {}, simulated {}, wall {} ms",
        r.reconverged_after.map_or_else(|| "never".into(), secs),
        r.end,
        wall.as_millis()
    );
    println!("sim: 1 seeds, {} violations", r.found);
    r.found
}

/// A duration as seconds with millisecond precision.
fn secs(d: Duration) -> String {
    format!("{:.3}s", d.total_micros() as f64 / 1e6)
}

fn print_run_stats(r: &RunResult) {
    let s = &r.stats;
    println!(
        "steps {}, datagrams {} (lost {}, cut {}, duplicated {}, to dead nodes {}), submitted {} \
         (back-pressure {}), deliveries {}, configuration events {}, faults {}",
        s.steps,
        s.datagrams,
        s.net.lost,
        s.net.cut,
        s.net.duplicated,
        s.to_dead,
        s.submitted,
        s.refused,
        s.deliveries,
        s.configurations,
        s.faults
    );
}

fn determinism(args: &Args) -> usize {
    let seed = args.seed.unwrap_or(0);
    let opts = RunOptions {
        hash_trace: true,
        ..RunOptions::default()
    };
    let a = Sim::run(scenario(args, seed), opts);
    let b = Sim::run(scenario(args, seed), opts);
    println!("seed {seed}: trace hash {:016x}", a.trace_hash);
    println!("seed {seed}: trace hash {:016x}", b.trace_hash);
    // The seed's own violations count too: a determinism check of a failing seed fails.
    let same = a.trace_hash == b.trace_hash && a.stats == b.stats;
    if same {
        println!("determinism: ok");
    } else {
        println!("determinism: FAILED (the two runs of seed {seed} differ)");
    }
    let violations = a.found + usize::from(!same);
    println!("sim: 1 seeds, {violations} violations");
    violations
}

fn many(args: &Args) -> usize {
    let n = args.seeds.unwrap_or(0);
    let results: Mutex<Vec<Option<(RunResult, u128)>>> = Mutex::new((0..n).map(|_| None).collect());
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let t0 = WallClock::now();
    std::thread::scope(|s| {
        for _ in 0..args.threads.min(n.max(1) as usize) {
            s.spawn(|| {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= n {
                        break;
                    }
                    let w = WallClock::now();
                    let r = Sim::run(scenario(args, args.start + k), RunOptions::default());
                    let ms = w.elapsed().as_millis();
                    if r.found > 0 && !args.keep_going {
                        stop.store(true, Ordering::Relaxed);
                    }
                    // A poisoned lock means another worker panicked: that panic is the report.
                    results.lock().expect("a worker panicked")[k as usize] = Some((r, ms));
                }
            });
        }
    });
    let total_wall = t0.elapsed();
    let results = results.into_inner().expect("a worker panicked");

    let mut ran = 0u64;
    let mut violations = 0usize;
    let mut failing: Vec<(Property, u64)> = Vec::new();
    let mut walls = Vec::new();
    let mut max_reconv: Option<(Duration, u64)> = None;
    let mut never = Vec::new();
    for (r, ms) in results.into_iter().flatten() {
        ran += 1;
        let seed = r.scenario.seed;
        walls.push((ms, seed, r.scenario.nodes));
        match r.reconverged_after {
            Some(d) if max_reconv.is_none_or(|(m, _)| d > m) => max_reconv = Some((d, seed)),
            Some(_) => {}
            None => never.push(seed),
        }
        if args.verbose {
            println!(
                "seed {seed}: {} nodes, {} violations, re-convergence {}, {} ms",
                r.scenario.nodes,
                r.found,
                r.reconverged_after.map_or_else(|| "never".into(), secs),
                ms
            );
        }
        if r.found > 0 {
            violations += r.found;
            failing.extend(
                r.by_property
                    .iter()
                    .filter(|(_, k)| *k > 0)
                    .map(|(p, _)| (*p, seed)),
            );
            report_failure(args, &r);
            if !args.keep_going {
                break;
            }
        }
    }

    println!("violations by property (seeds):");
    for p in Property::ALL {
        let seeds: Vec<String> = failing
            .iter()
            .filter(|f| f.0 == p)
            .map(|f| f.1.to_string())
            .collect();
        println!(
            "  {:<18} {:>4} {}",
            p.to_string(),
            seeds.len(),
            seeds.join(" ")
        );
    }
    if let Some((d, seed)) = max_reconv {
        println!("max re-convergence: {} simulated (seed {seed})", secs(d));
    }
    if !never.is_empty() {
        println!("never re-converged: seeds {never:?}");
    }
    if !walls.is_empty() {
        let sum: u128 = walls.iter().map(|w| w.0).sum();
        let max = walls.iter().max().copied().unwrap_or((0, 0, 0));
        let small: Vec<_> = walls.iter().filter(|w| w.2 <= 16).collect();
        let small_mean = if small.is_empty() {
            0
        } else {
            small.iter().map(|w| w.0).sum::<u128>() / small.len() as u128
        };
        println!(
            "wall: {ran} seeds in {:.1} s on {} threads ({:.2} seeds/s); per seed mean {} ms \
             (≤16 nodes: {} ms), max {} ms (seed {}, {} nodes)",
            total_wall.as_secs_f64(),
            args.threads,
            ran as f64 / total_wall.as_secs_f64().max(1e-9),
            sum / walls.len() as u128,
            small_mean,
            max.0,
            max.1,
            max.2
        );
    }
    println!("sim: {ran} seeds, {violations} violations");
    violations
}
