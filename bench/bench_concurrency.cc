// bench_concurrency: startCall+end pairs from several processes (fork) or
// threads at once, on one shared operation or on one operation each.
//
//   Concurrency/Procs/op:separate/n:N     N forked processes, each with its
//                                         own ledger and its own operation
//   Concurrency/Procs/op:same/n:N         N processes, each with its own
//                                         ledger, all joined to one operation
//   Concurrency/Threads/op:separate/n:N   N threads, a ledger and an
//                                         operation each
//   Concurrency/Threads/op:same/n:N       N threads, a ledger each, one
//                                         operation
//   Concurrency/ThreadsOneLedger/n:N      N threads sharing one ledger, an
//                                         operation each
//   Concurrency/FloorProcs/n:N            N forked processes running the same
//                                         non-shared loop (a clock read and a
//                                         ~450-byte line rendered into a
//                                         private 1 MiB buffer per pair): what
//                                         the machine gives N processes that
//                                         share nothing, that minute
//   Concurrency/FloorThreads/n:N          the same loop in N threads
//
// Each benchmark iteration is one run: the workers set up (open a ledger,
// create or join; not timed), wait at a gate, then each does kPairs call
// pairs (shl_call_start + shl_call_end + shl_call_release); the parent's
// wall clock runs from opening the gate to the last worker's end (manual
// time). Counters: pairs_per_s (all workers together), pairs_per_s_per_worker.
// wait_us is the ledgers' ring_full_wait_us: 0 (the default) or 1000 (the
// opt-in back-pressure, separate operations only).
#include "common.h"

#include <sys/resource.h>

#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr int kPairs = 100000;

enum Mode { kSeparate = 0, kSame = 1 };

// User + system CPU time of `who` (RUSAGE_SELF, RUSAGE_CHILDREN), in ns.
int64_t
cpu_ns(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

// Runs `iters` parallel runs through `runner` and reports.
void
report(benchmark::State &state, int n, double total_s, int64_t runs,
       int per_worker = kPairs)
{
    double pairs = (double)runs * n * per_worker;
    state.counters["pairs_per_s"] = pairs / total_s;
    state.counters["pairs_per_s_per_worker"] = pairs / total_s / n;
    state.counters["workers"] = n;
    state.SetItemsProcessed((int64_t)pairs);
}

// The worker: its own ledger; its own operation (separate) or a session of
// the shared one (same).
shlb::Worker
make_pair_worker(const shlb::TempBase &base, int i, Mode mode,
                 const std::string &shared_id, int64_t wait_us)
{
    std::string pid_name = "w" + std::to_string(i);
    shl_ledger_opts o = shlb::opts();
    o.ring_full_wait_us = wait_us;
    shl_ledger *l = shlb::open_ledger(base, pid_name.c_str(), o);
    shl_op *op = nullptr;
    if (mode == kSeparate)
        SHLB_CHECK(shl_op_create(l, nullptr, nullptr, &op));
    else
        SHLB_CHECK(shl_op_join(l, shared_id.c_str(), nullptr, &op));
    shlb::Worker w;
    w.work = [op] {
        for (int k = 0; k < kPairs; k++)
            shlb::call_pair(op);
    };
    w.teardown = [l, op, mode] {
        if (mode == kSeparate)
            SHLB_CHECK(shl_op_complete(op));
        else
            SHLB_CHECK(shl_op_leave(op, false));
        shl_ledger_close(l);
    };
    return w;
}

template <bool kProcs>
void
Pairs(benchmark::State &state)
{
    const Mode mode = (Mode)state.range(0);
    const int n = (int)state.range(1);
    const int64_t wait_us = state.range(2);
    shlb::TempBase base(kProcs ? "conc-p" : "conc-t");
    // The parent's ledger creates the segment before the workers open it,
    // and owns the shared operation.
    shl_ledger *parent = shlb::open_ledger(base, "parent", shlb::opts());
    shl_op *shared = nullptr;
    SHLB_CHECK(shl_op_create(parent, "shared", nullptr, &shared));
    const std::string shared_id = shl_op_id(shared);
    double total = 0;
    int64_t runs = 0;
    // processes: the CPU time of this process (idle but for its ledger's
    // snapshotter thread, the drainer of every worker's ring) and of the
    // workers (after they were waited for), per pair: the CPU model's
    // D and P measured in place (issue 14)
    int64_t self0 = cpu_ns(RUSAGE_SELF), kids0 = cpu_ns(RUSAGE_CHILDREN);
    for (auto _ : state) {
        auto mk = [&](int i) {
            return make_pair_worker(base, i, mode, shared_id, wait_us);
        };
        double s = kProcs ? shlb::run_forked(n, mk) : shlb::run_threads(n, mk);
        state.SetIterationTime(s);
        total += s;
        runs++;
    }
    report(state, n, total, runs);
    if (kProcs) {
        double pairs = (double)runs * n * kPairs;
        state.counters["drainer_cpu_ns_per_pair"] =
            (double)(cpu_ns(RUSAGE_SELF) - self0) / pairs;
        state.counters["worker_cpu_ns_per_pair"] =
            (double)(cpu_ns(RUSAGE_CHILDREN) - kids0) / pairs;
    }
    SHLB_CHECK(shl_op_complete(shared));
    shl_ledger_close(parent);
}

void
ThreadsOneLedger(benchmark::State &state)
{
    const int n = (int)state.range(0);
    shlb::TempBase base("conc-1l");
    shl_ledger *l = shlb::open_ledger(base, "shared", shlb::opts());
    double total = 0;
    int64_t runs = 0;
    for (auto _ : state) {
        double s = shlb::run_threads(n, [&](int) {
            shl_op *op = nullptr;
            SHLB_CHECK(shl_op_create(l, nullptr, nullptr, &op));
            shlb::Worker w;
            w.work = [op] {
                for (int k = 0; k < kPairs; k++)
                    shlb::call_pair(op);
            };
            w.teardown = [op] { SHLB_CHECK(shl_op_complete(op)); };
            return w;
        });
        state.SetIterationTime(s);
        total += s;
        runs++;
    }
    report(state, n, total, runs);
    shl_ledger_close(l);
}

// The floor's loop: per "pair" what a call pair costs a machine that shares
// nothing: two clock reads and two rendered lines (~450 bytes in all) into a
// private buffer, wrapping at 1 MiB. The result is folded into a sink so the
// compiler keeps the work.
uint64_t
floor_loop(int pairs)
{
    static thread_local std::vector<char> buf(1 << 20);
    size_t at = 0;
    uint64_t sink = 0;
    static const char tmpl[] =
        "2026-12-06T20:00:00.000000+00:00 [INFO] CALL_STARTED callId="
        "call_worker_0000000_abcd participant=worker\n{\"seq\":1,\"ts\":"
        "\"2026-12-06T20:00:00.000000+00:00\",\"event\":\"CALL_STARTED\","
        "\"level\":\"info\",\"pid\":1,\"callId\":\"call_worker_0000000_"
        "abcd\",\"participantId\":\"worker\"}\n";
    for (int k = 0; k < pairs; k++) {
        for (int half = 0; half < 2; half++) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (at + sizeof(tmpl) > buf.size())
                at = 0;
            memcpy(&buf[at], tmpl, sizeof(tmpl) - 1);
            // the varying parts: a time stamp and a counter
            uint64_t v = (uint64_t)ts.tv_nsec ^ (uint64_t)k;
            for (int d = 0; d < 7; d++) {
                buf[at + 20 + d] = (char)('0' + v % 10);
                v /= 10;
            }
            sink += (unsigned char)buf[at + 20] + at;
            at += sizeof(tmpl) - 1;
        }
    }
    return sink;
}

std::atomic<uint64_t> floor_sink{0};
constexpr int kFloorPairs = 5 * kPairs; // its runs last about as long

template <bool kProcs>
void
Floor(benchmark::State &state)
{
    const int n = (int)state.range(0);
    double total = 0;
    int64_t runs = 0;
    for (auto _ : state) {
        auto mk = [&](int) {
            floor_sink += floor_loop(4096); // touch the buffer (not timed)
            shlb::Worker w;
            w.work = [] { floor_sink += floor_loop(kFloorPairs); };
            return w;
        };
        double s = kProcs ? shlb::run_forked(n, mk) : shlb::run_threads(n, mk);
        state.SetIterationTime(s);
        total += s;
        runs++;
    }
    report(state, n, total, runs, kFloorPairs);
}

void
args(benchmark::internal::Benchmark *b)
{
    b->ArgNames({"op", "n", "wait_us"});
    for (int mode : {kSeparate, kSame})
        for (int n : {1, 2, 4})
            b->Args({mode, n, 0});
    b->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
}

// The same with the opt-in back-pressure (ring_full_wait_us = 1000).
void
args_wait(benchmark::internal::Benchmark *b)
{
    b->ArgNames({"op", "n", "wait_us"});
    for (int n : {1, 2, 4})
        b->Args({kSeparate, n, 1000});
    b->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
}

BENCHMARK_TEMPLATE(Pairs, true)->Name("Concurrency/Procs")->Apply(args);
BENCHMARK_TEMPLATE(Pairs, true)->Name("Concurrency/Procs")->Apply(args_wait);
BENCHMARK_TEMPLATE(Pairs, false)->Name("Concurrency/Threads")->Apply(args);
BENCHMARK(ThreadsOneLedger)
    ->Name("Concurrency/ThreadsOneLedger")
    ->ArgName("n")
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_TEMPLATE(Floor, true)
    ->Name("Concurrency/FloorProcs")
    ->ArgName("n")
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(Floor, false)
    ->Name("Concurrency/FloorThreads")
    ->ArgName("n")
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
