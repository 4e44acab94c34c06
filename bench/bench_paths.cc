// bench_paths: the library's hot paths through the public API, one process.
//
//   Paths/Heartbeat/participants:P    shl_ledger_heartbeat() of the last of P
//                                     ledgers open in the segment (P = 10,
//                                     1024 = the full participant table)
//   Paths/CallPair                    shl_call_start + shl_call_end +
//                                     shl_call_release, no description
//   Paths/CreateComplete/churn:C      shl_op_create + shl_op_complete, after
//                                     C create+complete cycles were run first
//                                     (0, and enough to wear the id index)
//   Paths/LookupMiss/churn:C          shl_op_join of an absent id
//                                     (SHL_ENOTFOUND) after C cycles
//   Paths/JoinLeave                   shl_op_join + shl_op_leave by another
//                                     ledger, one operation in the segment
//   Paths/Lookup/ops:N                the same join+leave, round-robin over N
//                                     live operations (10, 1000, 1024 = full
//                                     table): the lookup measure (see below);
//                                     JoinLeave and Lookup* run with a 10 s
//                                     snapshotter period (see the code)
//   Paths/LookupOwn/ops:N             join+leave by the ledger that created
//                                     the N operations (process-local lists)
//   Paths/SnapshotLookup/ops:N        shl_reader_snapshot of an operation
//                                     with no frames among N operations
//   Paths/Snapshot/frames:F/others:O  shl_reader_snapshot + free of an
//                                     operation with F pending frames, while
//                                     another operation holds O frames
//   Paths/LogLine                     shl_op_log (skipped until implemented)
//   Paths/CompleteArchive/durable:D   shl_op_create + one log line +
//                                     shl_op_complete (the archive written),
//                                     with opts.durable = D: the cost of the
//                                     fsyncs of complete() (issue 12 item 6);
//                                     base under /tmp (a disk, not tmpfs, on
//                                     the CI machines)
//   Paths/CallPairSyncFiles           Paths/CallPair on a ledger opened with
//                                     sync_files (read-your-writes files:
//                                     each start and end flushes the ring
//                                     and rewrites the JSON before it
//                                     returns); compare Original/CallPair
//   Paths/CallPairFlush               Paths/CallPair + shl_op_flush: the
//                                     barrier on demand after each pair
//
// Lookup measure: the public API has no lookup-only call. shl_op_join is the
// cheapest call whose cost depends on the id lookup (index probe + a seqlock
// read of the operation record); the rest of join+leave is a constant (two
// small allocations, two atomic RMWs on the operation record, two clock
// reads). A snapshot also looks the id up, but it then scans the frame and
// resource tables, so it is reported separately.
#include "common.h"

#include <atomic>


namespace {

void
Heartbeat(benchmark::State &state)
{
    const int parts = (int)state.range(0);
    shlb::TempBase base("hb");
    shl_ledger_opts o = shlb::opts(1024, 0, 4096);
    std::vector<shl_ledger *> ls;
    for (int i = 0; i < parts; i++) {
        std::string id = "p" + std::to_string(i);
        ls.push_back(shlb::open_ledger(base, id.c_str(), o));
    }
    shl_ledger *l = ls.back();
    for (auto _ : state)
        SHLB_CHECK(shl_ledger_heartbeat(l));
    for (auto *x : ls)
        shl_ledger_close(x);
}
BENCHMARK(Heartbeat)
    ->Name("Paths/Heartbeat")
    ->ArgName("participants")
    ->Arg(10)
    ->Arg(1024);

void
CallPair(benchmark::State &state)
{
    shlb::TempBase base("call");
    shl_ledger *l = shlb::open_ledger(base, "p", shlb::opts());
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, "bench", nullptr, &op));
    for (auto _ : state)
        shlb::call_pair(op);
    SHLB_CHECK(shl_op_complete(op));
    shl_ledger_close(l);
}
BENCHMARK(CallPair)->Name("Paths/CallPair");

void
CallPairSyncFiles(benchmark::State &state)
{
    shlb::TempBase base("callsync");
    shl_ledger_opts o = shlb::opts();
    o.sync_files = true;
    shl_ledger *l = shlb::open_ledger(base, "p", o);
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, "bench", nullptr, &op));
    for (auto _ : state)
        shlb::call_pair(op);
    SHLB_CHECK(shl_op_complete(op));
    shl_ledger_close(l);
}
BENCHMARK(CallPairSyncFiles)->Name("Paths/CallPairSyncFiles");

void
CallPairFlush(benchmark::State &state)
{
    shlb::TempBase base("callflush");
    shl_ledger *l = shlb::open_ledger(base, "p", shlb::opts());
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, "bench", nullptr, &op));
    for (auto _ : state) {
        shlb::call_pair(op);
        SHLB_CHECK(shl_op_flush(op, 5000));
    }
    SHLB_CHECK(shl_op_complete(op));
    shl_ledger_close(l);
}
BENCHMARK(CallPairFlush)->Name("Paths/CallPairFlush");

// Run `cycles` create+complete cycles (untimed), waiting out SHL_EFULL.
void
churn_ops(shl_ledger *l, int cycles)
{
    for (int i = 0; i < cycles; i++) {
        shl_op *op = nullptr;
        int rc;
        while ((rc = shl_op_create(l, nullptr, nullptr, &op)) == SHL_EFULL)
            usleep(11000);
        SHLB_CHECK(rc);
        SHLB_CHECK(shl_op_complete(op));
    }
}

void
CreateComplete(benchmark::State &state)
{
    const int churn = (int)state.range(0);
    shlb::TempBase base("create");
    shl_ledger *l = shlb::open_ledger(base, "p", shlb::opts());
    // A completed operation's record stays RECLAIMED for 10 ms (its reuse
    // delay), so a loop faster than cap/10 ms runs out of records and
    // create answers SHL_EFULL. Then wait, untimed, and count it.
    int64_t full_waits = 0;
    auto create = [&](shl_op **op) {
        for (;;) {
            int rc = shl_op_create(l, nullptr, nullptr, op);
            if (rc != SHL_EFULL) {
                SHLB_CHECK(rc);
                return;
            }
            full_waits++;
            state.PauseTiming();
            usleep(11000);
            state.ResumeTiming();
        }
    };
    churn_ops(l, churn);
    for (auto _ : state) {
        shl_op *op = nullptr;
        create(&op);
        SHLB_CHECK(shl_op_complete(op));
    }
    state.counters["efull_waits"] = (double)full_waits;
    shl_ledger_close(l);
}
void
CompleteArchive(benchmark::State &state)
{
    shlb::TempBase base("durable");
    shl_ledger_opts o = shlb::opts();
    o.durable = state.range(0) != 0;
    o.max_backups = 4; // rotation keeps backup/ small, as in production
    shl_ledger *l = shlb::open_ledger(base, "p", o);
    for (auto _ : state) {
        shl_op *op = nullptr;
        int rc;
        while ((rc = shl_op_create(l, nullptr, nullptr, &op)) == SHL_EFULL) {
            state.PauseTiming();
            usleep(11000);
            state.ResumeTiming();
        }
        SHLB_CHECK(rc);
        SHLB_CHECK(shl_op_log(op, SHL_LOG_INFO, "one line"));
        SHLB_CHECK(shl_op_complete(op));
    }
    shl_ledger_close(l);
}
BENCHMARK(CompleteArchive)
    ->Name("Paths/CompleteArchive")
    ->ArgName("durable")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond);

BENCHMARK(CreateComplete)
    ->Name("Paths/CreateComplete")
    ->ArgName("churn")
    ->Arg(0)
    ->Arg(5000);

// Looking up an id that is not in the index (what create does for every
// new id, and join of a finished operation): the probe runs to the first
// empty entry, so its cost depends on the tombstones that churn leaves.
void
LookupMiss(benchmark::State &state)
{
    shlb::TempBase base("miss");
    shl_ledger *l = shlb::open_ledger(base, "p", shlb::opts());
    churn_ops(l, (int)state.range(0));
    const char *absent = "20260101T00:00:00.000-nobody-00000000";
    for (auto _ : state) {
        shl_op *op = nullptr;
        int rc = shl_op_join(l, absent, nullptr, &op);
        if (rc != SHL_ENOTFOUND) {
            state.SkipWithError("join of an absent id did not fail");
            break;
        }
    }
    shl_ledger_close(l);
}
BENCHMARK(LookupMiss)
    ->Name("Paths/LookupMiss")
    ->ArgName("churn")
    ->Arg(0)
    ->Arg(5000);

// N live operations created by `creator`; ids returned.
std::vector<std::string>
make_ops(shl_ledger *creator, int n, std::vector<shl_op *> &sessions)
{
    std::vector<std::string> ids;
    for (int i = 0; i < n; i++) {
        shl_op *op = nullptr;
        SHLB_CHECK(shl_op_create(creator, nullptr, nullptr, &op));
        ids.emplace_back(shl_op_id(op));
        sessions.push_back(op);
    }
    return ids;
}

void
finish_ops(std::vector<shl_op *> &sessions)
{
    for (shl_op *op : sessions)
        SHLB_CHECK(shl_op_complete(op));
    sessions.clear();
}

// join+leave round-robin over N operations; own = joiner is the creator.
void
lookup_join_leave(benchmark::State &state, int n, bool own)
{
    shlb::TempBase base("lookup");
    // A snapshotter period of 10 s: every join and leave changes its
    // operation, so with N operations the snapshotter rewrites N JSON files
    // a period (bounded to a quarter of a core), which would be measured
    // here instead of the lookup. (Without a snapshotter at all, the ring
    // fills and every event is written by its producer.) What the
    // snapshotter costs the hot path is bench_snapshotter's subject.
    shl_ledger_opts o = shlb::opts();
    o.snapshot_period_ms = 10000;
    shl_ledger *a = shlb::open_ledger(base, "creator", o);
    shl_ledger *b = own ? a : shlb::open_ledger(base, "joiner", o);
    std::vector<shl_op *> sessions;
    std::vector<std::string> ids = make_ops(a, n, sessions);
    size_t i = 0;
    for (auto _ : state) {
        shl_op *op = nullptr;
        SHLB_CHECK(shl_op_join(b, ids[i].c_str(), nullptr, &op));
        SHLB_CHECK(shl_op_leave(op, false));
        if (++i == ids.size())
            i = 0;
    }
    finish_ops(sessions);
    if (!own)
        shl_ledger_close(b);
    shl_ledger_close(a);
}

void
JoinLeave(benchmark::State &state)
{
    lookup_join_leave(state, 1, false);
}
BENCHMARK(JoinLeave)->Name("Paths/JoinLeave");

void
Lookup(benchmark::State &state)
{
    lookup_join_leave(state, (int)state.range(0), false);
}
BENCHMARK(Lookup)
    ->Name("Paths/Lookup")
    ->ArgName("ops")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(1024);

void
LookupOwn(benchmark::State &state)
{
    lookup_join_leave(state, (int)state.range(0), true);
}
BENCHMARK(LookupOwn)
    ->Name("Paths/LookupOwn")
    ->ArgName("ops")
    ->Arg(10)
    ->Arg(1024);

void
SnapshotLookup(benchmark::State &state)
{
    const int n = (int)state.range(0);
    shlb::TempBase base("snaplk");
    shl_ledger *a = shlb::open_ledger(base, "creator", shlb::opts());
    std::vector<shl_op *> sessions;
    std::vector<std::string> ids = make_ops(a, n, sessions);
    shl_reader *r = shl_ledger_reader(a);
    size_t i = 0;
    for (auto _ : state) {
        shl_snapshot *s = nullptr;
        SHLB_CHECK(shl_reader_snapshot(r, ids[i].c_str(), &s));
        shl_snapshot_free(s);
        if (++i == ids.size())
            i = 0;
    }
    finish_ops(sessions);
    shl_ledger_close(a);
}
BENCHMARK(SnapshotLookup)
    ->Name("Paths/SnapshotLookup")
    ->ArgName("ops")
    ->Arg(10)
    ->Arg(1024);

void
Snapshot(benchmark::State &state)
{
    const int frames = (int)state.range(0);
    const int others = (int)state.range(1);
    shlb::TempBase base("snap");
    shl_ledger *l = shlb::open_ledger(base, "p", shlb::opts(0, 0, 65536));
    shl_op *other = nullptr, *op = nullptr;
    std::vector<shl_call *> calls;
    // the other operation's frames first, so they sit below ours in the
    // table, as they would in a long-running segment
    if (others) {
        SHLB_CHECK(shl_op_create(l, "other", nullptr, &other));
        for (int i = 0; i < others; i++) {
            shl_call *c = nullptr;
            SHLB_CHECK(shl_call_start(other, nullptr, &c));
        }
    }
    SHLB_CHECK(shl_op_create(l, "measured", nullptr, &op));
    for (int i = 0; i < frames; i++) {
        shl_call_opts co;
        shl_call_opts_init(&co);
        co.description = "a call of the benchmark";
        shl_call *c = nullptr;
        SHLB_CHECK(shl_call_start(op, &co, &c));
    }
    shl_reader *r = shl_ledger_reader(l);
    const std::string id = shl_op_id(op);
    for (auto _ : state) {
        shl_snapshot *s = nullptr;
        SHLB_CHECK(shl_reader_snapshot(r, id.c_str(), &s));
        if (s->frame_count != (size_t)frames) {
            state.SkipWithError("wrong frame count");
            shl_snapshot_free(s);
            break;
        }
        shl_snapshot_free(s);
    }
    state.counters["frames"] = frames;
    SHLB_CHECK(shl_op_complete(op));
    if (other)
        SHLB_CHECK(shl_op_complete(other));
    shl_ledger_close(l);
}
BENCHMARK(Snapshot)
    ->Name("Paths/Snapshot")
    ->ArgNames({"frames", "others"})
    ->Args({10, 0})
    ->Args({1000, 0})
    ->Args({10000, 0})
    ->Args({10, 10000});

void
LogLine(benchmark::State &state)
{
    shlb::TempBase base("log");
    shl_ledger *l = shlb::open_ledger(base, "p", shlb::opts());
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, nullptr, nullptr, &op));
    for (auto _ : state)
        SHLB_CHECK(shl_op_log(op, SHL_LOG_INFO, "a log line of the benchmark"));
    SHLB_CHECK(shl_op_complete(op));
    shl_ledger_close(l);
}
BENCHMARK(LogLine)->Name("Paths/LogLine");

} // namespace

BENCHMARK_MAIN();
