#!/usr/bin/env bash
# Build the benchmarks in Release, run them, print medians and ratios.
#
#   tools/dev/bench.sh                 build/bench, every bench of this suite
#   tools/dev/bench.sh floors paths    only bench/bench_floors.cc, bench_paths.cc
#   tools/dev/bench.sh liveness        only bench/bench_liveness.cc (crash,
#                                      abort and hang detection across real
#                                      processes; about 2.5 minutes)
#
# Each benchmark runs with 5 repetitions and reports aggregates only; the
# JSON lands in build/bench/results/<name>.json, the summary (a Markdown
# table of medians, the ratios and which bars hold) in
# build/bench/results/summary.md and on stdout. About 12 minutes on 2 cores.
# The liveness benches set their own sample counts (one repetition of 200
# kills, or 20 hangs): their JSON has the runs themselves, with p50/p99/max
# counters, which the summary shows in a table of their own.
#
# Environment:
#   BUILD=<dir>          build directory (default build/bench)
#   SHL_BENCH_SRC=<dir>  source tree to build (default: this checkout); e.g. a
#                        `git archive HEAD` export when the working tree has
#                        someone's unfinished changes
#   REPS=5               --benchmark_repetitions
#   MIN_TIME=0.5         --benchmark_min_time (seconds) of the timed benches
#   SUMMARY_ONLY=1       do not build or run: summarise existing results
#   WAIT_IDLE=<load>     before each bench, wait (up to 10 min) until the
#                        1-minute load average is below <load> (e.g. 0.5)
#
# The machine should be otherwise idle: the load average before and after
# the run is printed with the results, and concurrency numbers on a busy
# 2-core machine mean little.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC=${SHL_BENCH_SRC:-$ROOT}
BUILD=${BUILD:-$ROOT/build/bench}
REPS=${REPS:-5}
MIN_TIME=${MIN_TIME:-0.5}
RESULTS="$BUILD/results"
BENCHES=("$@")
if ((${#BENCHES[@]} == 0)); then
    BENCHES=(floors paths original concurrency snapshotter liveness)
fi

mkdir -p "$RESULTS"

if [[ "${SUMMARY_ONLY:-0}" != 1 ]]; then
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DSHL_BUILD_TESTS=OFF -DSHL_BUILD_TOOLS=OFF -DSHL_BUILD_BENCH=ON \
        >"$RESULTS/cmake.log" 2>&1 || {
        cat "$RESULTS/cmake.log"
        exit 1
    }
    targets=()
    for b in "${BENCHES[@]}"; do targets+=("bench_bench_$b"); done
    cmake --build "$BUILD" -j"${JOBS:-2}" --target "${targets[@]}" \
        >"$RESULTS/build.log" 2>&1 || {
        tail -50 "$RESULTS/build.log"
        exit 1
    }

    {
        echo "date: $(date -Is)"
        echo "source: $SRC ($(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo export))"
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
        echo "cores: $(nproc)"
        echo "kernel: $(uname -sr)"
        echo "tmp_fs: $(df -T /tmp | awk 'NR==2 {print $2}')"
        echo "shm_fs: $(df -T /dev/shm | awk 'NR==2 {print $2}')"
        echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$RESULTS/machine.txt"

    wait_idle() {
        [[ -n "${WAIT_IDLE:-}" ]] || return 0
        local t=0
        while awk -v max="$WAIT_IDLE" '{exit !($1 >= max)}' /proc/loadavg &&
            ((t < 600)); do
            sleep 10
            t=$((t + 10))
        done
    }

    for b in "${BENCHES[@]}"; do
        exe="$BUILD/bench/bench_bench_$b"
        wait_idle
        echo "running $b (load $(cut -d' ' -f1 /proc/loadavg)) ..." >&2
        echo "load_before_$b: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
        "$exe" --benchmark_format=json \
            --benchmark_repetitions="$REPS" \
            --benchmark_report_aggregates_only=true \
            --benchmark_min_time="$MIN_TIME" \
            >"$RESULTS/$b.json" 2>"$RESULTS/$b.log" || {
            echo "bench $b failed:" >&2
            tail -20 "$RESULTS/$b.log" >&2
            exit 1
        }
    done
    echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
fi

SHLB_REPS="$REPS" python3 - "$RESULTS" <<'PY' | tee "$RESULTS/summary.md"
import json, os, sys

res = sys.argv[1]
med = {}      # run_name -> median entry
order = []
live = {}     # liveness runs (one repetition): run_name -> entry
live_order = []
for fn in ["floors", "paths", "original", "concurrency", "snapshotter", "liveness"]:
    p = os.path.join(res, fn + ".json")
    if not os.path.exists(p):
        continue
    with open(p) as f:
        data = json.load(f)
    for b in data["benchmarks"]:
        if b.get("run_type") == "iteration" and "p50_us" in b:
            name = b["run_name"]
            for cut in ("/manual_time", "/repeats:1"):
                name = name.replace(cut, "")
            name = "/".join(x for x in name.split("/") if not x.startswith("iterations:"))
            live[name] = b
            live_order.append(name)
            continue
        if b.get("run_type") != "aggregate" or b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].replace("/iterations:5", "").replace("/manual_time", "").replace("/real_time", "")
        med[name] = b
        order.append(name)

def ns(name):
    b = med.get(name)
    if b is None:
        return None
    t = b["real_time"]
    unit = b.get("time_unit", "ns")
    return t * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]

def ctr(name, key):
    b = med.get(name)
    return None if b is None else b.get(key)

def fmt_ns(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return "%.2f ms" % (v / 1e6)
    if v >= 1e3:
        return "%.2f µs" % (v / 1e3)
    return "%.1f ns" % v

with open(os.path.join(res, "machine.txt")) as f:
    machine = f.read().strip()
print("## Machine\n")
print("```\n" + machine + "\n```\n")

print("## Medians (%s repetitions)\n" % os.environ.get("SHLB_REPS", "5"))
print("| benchmark | median time | notes |")
print("|---|---:|---|")
for name in order:
    b = med[name]
    notes = []
    for k in ("pairs_per_s", "pairs_per_s_per_worker", "file_bytes",
              "efull_waits", "fallback", "ns_per_pair", "bytes",
              "bytes_per_pair", "ns_per_byte", "ns_per_call",
              "drainer_cpu_ns_per_pair", "worker_cpu_ns_per_pair"):
        if k in b:
            v = b[k]
            if k in ("ns_per_pair", "ns_per_call"): # rate counters inverted: seconds
                notes.append("%s=%.0f" % (k, v * 1e9 if v < 1 else v))
                continue
            if k == "ns_per_byte":
                notes.append("%s=%.3f" % (k, v * 1e9))
                continue
            notes.append("%s=%s" % (k, ("%.3gM" % (v / 1e6)) if v >= 1e5 else "%.0f" % v))
    if b.get("error_occurred"):
        notes.append("skipped: " + b.get("error_message", ""))
    print("| %s | %s | %s |" % (name, fmt_ns(ns(name)), ", ".join(notes)))

def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b

rows = []
def row(label, value, bar=None, ok=None):
    rows.append((label, value, bar, ok))

hb = ns("Paths/Heartbeat/participants:10")
hbf = ns("Paths/Heartbeat/participants:1024")
floor_hb = ns("Floor/HeartbeatStore")
floor_mx = ns("Floor/RobustMutex")
pair = ns("Paths/CallPair")
r = ratio(hb, floor_hb)
row("heartbeat ÷ floor (clock + release store)", r, "≤ 1.1", r is not None and r <= 1.1)
row("call pair ÷ robust-mutex floor", ratio(pair, floor_mx))
row("call pair median, snapshotter on, logs written (ns)", pair, "≤ 300 ns (goal 150)",
    pair is not None and pair <= 300)
for fs, label in ((0, "/tmp, ext4 disk"), (1, "/dev/shm, tmpfs")):
    r = ratio(ns("Original/CallPair/fs:%d" % fs), pair)
    row("original ÷ shmledger, call pair (%s)" % label, r, "≥ 100", r is not None and r >= 100)
for fs, label in ((0, "/tmp, ext4 disk"), (1, "/dev/shm, tmpfs")):
    r = ratio(ns("Original/Heartbeat/fs:%d" % fs), hb)
    row("original ÷ shmledger, heartbeat (%s)" % label, r)
# read-your-writes files (issue 18): the compatibility mode's price
row("call pair with sync_files (ns)", ns("Paths/CallPairSyncFiles"))
row("call pair + shl_op_flush (ns)", ns("Paths/CallPairFlush"))
row("sync_files call pair ÷ original's (/tmp, ext4 disk)",
    ratio(ns("Paths/CallPairSyncFiles"), ns("Original/CallPair/fs:0")))

def thr(kind, op, n, wait=0):
    return ctr("Concurrency/%s/op:%d/n:%d/wait_us:%d" % (kind, op, n, wait), "pairs_per_s")
for kind in ("Procs", "Threads"):
    for op, opname in ((0, "separate ops"), (1, "one op")):
        one = thr(kind, op, 1)
        for n in (2, 4):
            r = ratio(thr(kind, op, n), one)
            if kind == "Procs" and op == 0 and n == 2:
                row("%s, %s: %d ÷ 1 total throughput" % (kind.lower(), opname, n),
                    r, "≥ 1.5", r is not None and r >= 1.5)
            else:
                row("%s, %s: %d ÷ 1 total throughput" % (kind.lower(), opname, n), r)
# issue 14: every ratio read against what the machine gives that minute
floor_p = ratio(ctr("Concurrency/FloorProcs/n:2", "pairs_per_s"),
                ctr("Concurrency/FloorProcs/n:1", "pairs_per_s"))
floor_t = ratio(ctr("Concurrency/FloorThreads/n:2", "pairs_per_s"),
                ctr("Concurrency/FloorThreads/n:1", "pairs_per_s"))
row("floor: 2 ÷ 1 processes running a non-shared loop", floor_p)
row("floor: 2 ÷ 1 threads running a non-shared loop", floor_t)
r = ratio(ratio(thr("Procs", 0, 2), thr("Procs", 0, 1)), floor_p)
row("procs, separate ops, 2 ÷ 1, as a share of the floor's 2 ÷ 1", r,
    "goal ≥ 0.95", r is not None and r >= 0.95)
for n in (2, 4):
    row("procs, separate ops, back-pressure 1 ms: %d ÷ 1 total throughput" % n,
        ratio(thr("Procs", 0, n, 1000), thr("Procs", 0, 1, 1000)))
one = ctr("Concurrency/ThreadsOneLedger/n:1", "pairs_per_s")
for n in (2, 4):
    r = ratio(ctr("Concurrency/ThreadsOneLedger/n:%d" % n, "pairs_per_s"), one)
    if n == 2:
        row("threads sharing one ledger, separate ops: 2 ÷ 1", r, "≥ 1.5",
            r is not None and r >= 1.5)
        r2 = ratio(r, floor_t)
        row("threads sharing one ledger, 2 ÷ 1, as a share of the floor's", r2,
            "goal ≥ 0.95", r2 is not None and r2 >= 0.95)
    else:
        row("threads sharing one ledger, separate ops: %d ÷ 1" % n, r)

r = ratio(hbf, hb)
row("heartbeat, 1024 ÷ 10 participants", r, "≤ 1.5", r is not None and r <= 1.5)
r = ratio(ns("Paths/Lookup/ops:1024"), ns("Paths/Lookup/ops:10"))
row("lookup (join+leave), 1024 (full) ÷ 10 operations", r, "≤ 1.2", r is not None and r <= 1.2)
row("lookup (join+leave), 1000 ÷ 10 operations",
    ratio(ns("Paths/Lookup/ops:1000"), ns("Paths/Lookup/ops:10")))
row("lookup by the creating ledger, 1024 ÷ 10",
    ratio(ns("Paths/LookupOwn/ops:1024"), ns("Paths/LookupOwn/ops:10")))
row("snapshot lookup (no frames), 1024 ÷ 10",
    ratio(ns("Paths/SnapshotLookup/ops:1024"), ns("Paths/SnapshotLookup/ops:10")))
row("snapshot of 10 frames, 10,000 other frames ÷ none",
    ratio(ns("Paths/Snapshot/frames:10/others:10000"), ns("Paths/Snapshot/frames:10/others:0")))
row("lookup miss (absent id), after 5,000 create+complete ÷ fresh",
    ratio(ns("Paths/LookupMiss/churn:5000"), ns("Paths/LookupMiss/churn:0")))
row("create+complete, after 5,000 cycles ÷ fresh",
    ratio(ns("Paths/CreateComplete/churn:5000"), ns("Paths/CreateComplete/churn:0")))

# issue 5: the snapshotter stays off the hot path
base = "Snapshotter/CallPair/snapshotter:%d/period_ms:%d/ring:%d/spin:0"
for per, ring in ((100, 16384), (10, 16384), (100, 4096)):
    r = ratio(ns(base % (1, per, ring)), ns(base % (0, 100, ring)))
    row("call pair, snapshotter running (period %d ms, ring %d) ÷ not" % (per, ring),
        r, "≤ 1.1", r is not None and r <= 1.1)
spin = ns("Snapshotter/CallPair/snapshotter:0/period_ms:100/ring:16384/spin:1")
row("call pair, no snapshotter but a spinning thread on the other core ÷ not",
    ratio(spin, ns(base % (0, 100, 16384))))
row("call pair, snapshotter running ÷ a spinning thread instead",
    ratio(ns(base % (1, 100, 16384)), spin))
def per(name, key):  # an inverted rate counter, in ns
    v = ctr(name, key)
    return v * 1e9 if v is not None and v < 1 else v
dn = per("Snapshotter/Drain/ring:4096/fs:0", "ns_per_pair")
row("snapshotter's cost per call pair (four lines) ÷ the producer's",
    ratio(dn, ns(base % (0, 100, 4096))))
row("snapshotter's cost per call pair (ns)", dn, "≤ 100 ns (a third of 300)",
    dn is not None and dn <= 100)
row("snapshotter's cost per call pair, files on tmpfs (ns)",
    per("Snapshotter/Drain/ring:4096/fs:1", "ns_per_pair"))
# issue 14: the floor under the drain, this machine: its bytes per pair
# times write(2)'s cost per byte (128 KiB appends, a batch's buffer)
bpp = ctr("Snapshotter/Drain/ring:4096/fs:0", "bytes_per_pair")
for fs, label in ((0, "ext4"), (1, "tmpfs")):
    nb = per("Snapshotter/WriteCost/chunk:131072/fs:%d" % fs, "ns_per_byte")
    row("write(2) floor of the drain per pair, %s: bytes per pair × ns per byte (ns)" % label,
        None if bpp is None or nb is None else bpp * nb)
row("a syscall's fixed cost, write(2) of 64 bytes (ns)",
    per("Snapshotter/WriteCost/chunk:64/fs:0", "ns_per_call"))
row("call pair with the ring full (producer writes) ÷ through the ring",
    ratio(ns("Snapshotter/CallPairRingFull"), ns(base % (0, 100, 16384))))

if live:
    print("\n## Liveness (real processes; latency from the cause)\n")
    print("| benchmark | p50 | p99 | max | samples |")
    print("|---|---:|---:|---:|---:|")
    for name in live_order:
        b = live[name]
        if b.get("error_occurred"):
            print("| %s | skipped: %s | | | |" % (name, b.get("error_message", "")))
            continue
        print("| %s | %s | %s | %s | %.0f |" % (name, fmt_ns(b["p50_us"] * 1e3),
              fmt_ns(b["p99_us"] * 1e3), fmt_ns(b["max_us"] * 1e3), b["samples"]))

def live_p99(prefix):
    for name in live_order:
        if name.startswith(prefix) and not live[name].get("error_occurred"):
            return live[name]["p99_us"] * 1e3
    return None

# issue 13: a crash or an abort reaches everyone in about a millisecond
for prefix, label in (("Liveness/Crash/when:0", "SIGKILL right after the call started"),
                      ("Liveness/Crash/when:1", "SIGKILL at a random time after joining"),
                      ("Liveness/Crash/when:2", "SIGKILL while holding the structure lock")):
    v = live_p99(prefix)
    row("crash → on_failure p99, %s (ns)" % label, v, "≤ 10 ms (goal 1 ms)",
        v is not None and v <= 10e6)
v = live_p99("Liveness/Abort/others:3/settled:1")
row("abort → all 3 others told p99, members asleep in their wait (ns)", v,
    "≤ 2 ms (goal 200 µs)", v is not None and v <= 2e6)
v = live_p99("Liveness/Abort/others:3/settled:0")
row("abort → all 3 others told p99, members just joined (ns)", v,
    "≤ 2 ms (goal 200 µs)", v is not None and v <= 2e6)
jl = ns("Paths/JoinLeave")
row("join+leave, Paths/JoinLeave (ns)", jl, "≤ 3.96 µs (3.3 µs × 1.2)",
    jl is not None and jl <= 3960)
row("join+leave with the other member in another process ÷ Paths/JoinLeave",
    ratio(ns("Liveness/JoinLeaveCrossProcess"), jl))

print("\n## Ratios and bars\n")
print("| ratio | value | bar | holds |")
print("|---|---:|---|---|")
for label, v, bar, ok in rows:
    if v is None:
        vs = "n/a"
    elif v >= 100:
        vs = "%.0f" % v
    else:
        vs = "%.2f" % v
    if label.endswith("(ns)") and v is not None:
        vs = "%.0f ns" % v if v < 1e4 else fmt_ns(v)
    print("| %s | %s | %s | %s |" % (label, vs, bar or "", "" if bar is None else ("yes" if ok else "**no**")))
PY
