// bench_snapshotter: the cost of the files on the hot path, and of
// serialising a big operation.
//
//   Snapshotter/CallPair/snapshotter:0/period_ms:P/ring:R
//                                        shl_call_start + shl_call_end +
//                                        shl_call_release, back to back; no
//                                        snapshotter thread: the ring (R
//                                        records) is drained with the timing
//                                        paused every quarter ring
//   Snapshotter/CallPair/snapshotter:1/period_ms:P/ring:R
//                                        the same with the ledger's
//                                        snapshotter thread draining the ring
//                                        into the log and trail files and
//                                        rewriting the JSON every P ms,
//                                        concurrently on the other core
//   Snapshotter/CallPair/snapshotter:0/.../spin:1
//                                        :0 with a thread spinning on pure
//                                        ALU work on the other core: the cost
//                                        of any second busy thread here
//   The bar (issue 5): :1 <= 1.2 x :0 in the same run. Both post
//   CALL_STARTED/CALL_ENDED into the event ring; only the consumer differs.
//   The producer runs flat out, so :1 also shows whether the consumer keeps
//   up (counter `fallback`: events the producer had to write itself because
//   the ring was full).
//
//   Snapshotter/Drain/ring:4096          the consumer alone: render and
//                                        append the events of 2048 call pairs
//                                        (four lines each); ns_per_pair
//                                        compares with CallPair :0
//   Snapshotter/CallPairRingFull         the fallback path: the ring is full
//                                        and never drained, every event is
//                                        written by the producer itself
//   Snapshotter/ToJson/frames:10000      shl_snapshot_to_json of a snapshot
//                                        holding 10,000 frames (pretty)
//   Snapshotter/TakeToJson/frames:10000  shl_reader_snapshot of a live
//                                        operation with 10,000 frames, then
//                                        shl_snapshot_to_json: what the
//                                        snapshotter does per changed op
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern "C" {
// internal (src/files/events.h): drain the ring now (links shmledger_objs)
int shl__snapshotter_flush(shl_ledger *l, int64_t timeout_ms);
}

namespace {

// Bytes in the regular files under dir (one level, and backup/ below it).
uint64_t
file_bytes(const std::string &dir)
{
    uint64_t n = 0;
    for (const std::string &d : {dir, dir + "/backup"}) {
        DIR *dp = opendir(d.c_str());
        if (!dp)
            continue;
        while (struct dirent *e = readdir(dp)) {
            struct stat st;
            std::string p = d + "/" + e->d_name;
            size_t len = std::strlen(e->d_name);
            if (len >= 5 && !std::strcmp(e->d_name + len - 5, ".json"))
                continue; // the snapshot, not the drain's lines
            if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode))
                n += (uint64_t)st.st_size;
        }
        closedir(dp);
    }
    return n;
}

void
CallPair(benchmark::State &state)
{
    const bool snap = state.range(0) != 0;
    const bool spin = state.range(3) != 0;
    // spin:1 -- a thread doing nothing but ALU work (no memory the producer
    // uses) on the other core: what merely having a second busy thread costs
    // on this machine, the floor under any concurrent snapshotter
    std::atomic<bool> stop{false};
    std::thread spinner;
    if (spin)
        spinner = std::thread([&stop] {
            uint64_t x = 1;
            while (!stop.load(std::memory_order_relaxed))
                for (int i = 0; i < 1000; i++)
                    x = x * 6364136223846793005ull + 1442695040888963407ull;
            benchmark::DoNotOptimize(x);
        });
    shlb::TempBase base("snapcall");
    shl_ledger_opts o = shlb::opts(64, 64, 4096);
    o.snapshotter = snap;
    o.snapshot_period_ms = state.range(1);
    o.max_events = (uint32_t)state.range(2);
    shl_ledger *l = shlb::open_ledger(base, "bench", o);
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, nullptr, nullptr, &op));
    uint64_t n = 0;
    // two events per pair: drain at a quarter of the ring, as the producers'
    // wake-up does for the snapshotter thread
    const uint64_t drain_every = (uint64_t)state.range(2) / 8;
    for (auto _ : state) {
        shl_call *c = nullptr;
        SHLB_CHECK(shl_call_start(op, nullptr, &c));
        SHLB_CHECK(shl_call_end(c, nullptr));
        SHLB_CHECK(shl_call_release(c));
        if (!snap && ++n >= drain_every) {
            n = 0;
            state.PauseTiming();
            SHLB_CHECK(shl__snapshotter_flush(l, 10000));
            state.ResumeTiming();
        }
    }
    if (spin) {
        stop = true;
        spinner.join();
    }
    shl_segment_info info;
    SHLB_CHECK(shl_reader_info(shl_ledger_reader(l), &info));
    state.counters["fallback"] = (double)info.events_fallback;
    SHLB_CHECK(shl__snapshotter_flush(l, 10000));
    SHLB_CHECK(shl_op_complete(op));
    shl_ledger_close(l);
}
BENCHMARK(CallPair)
    ->Name("Snapshotter/CallPair")
    ->ArgNames({"snapshotter", "period_ms", "ring", "spin"})
    ->Args({0, 100, 16384, 0}) // the defaults (ring 16384 = 8 MiB)
    ->Args({1, 100, 16384, 0})
    ->Args({1, 10, 16384, 0})
    ->Args({0, 100, 4096, 0}) // a quarter of the default ring
    ->Args({1, 100, 4096, 0})
    ->Args({0, 100, 16384, 1}) // no snapshotter, a spinning thread
    ->UseRealTime();

// What the snapshotter spends per call pair: the ring is filled with
// `ring` / 2 pairs (timing paused), then drained into the files (timed).
// Reported per pair, so it compares with CallPair: the consumer keeps up
// with a saturating producer only while this is below CallPair/snapshotter:0.
void
Drain(benchmark::State &state)
{
    shlb::TempBase base("snapdrain", state.range(1) ? "/dev/shm" : "/tmp");
    shl_ledger_opts o = shlb::opts(64, 64, 4096);
    o.snapshotter = false;
    o.max_events = (uint32_t)state.range(0);
    shl_ledger *l = shlb::open_ledger(base, "bench", o);
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, nullptr, nullptr, &op));
    SHLB_CHECK(shl__snapshotter_flush(l, 10000));
    const int64_t pairs = state.range(0) / 2;
    for (auto _ : state) {
        state.PauseTiming();
        for (int64_t i = 0; i < pairs; i++) {
            shl_call *c = nullptr;
            SHLB_CHECK(shl_call_start(op, nullptr, &c));
            SHLB_CHECK(shl_call_end(c, nullptr));
            SHLB_CHECK(shl_call_release(c));
        }
        state.ResumeTiming();
        SHLB_CHECK(shl__snapshotter_flush(l, 10000));
    }
    state.SetItemsProcessed(state.iterations() * pairs);
    state.counters["ns_per_pair"] = benchmark::Counter(
        (double)(state.iterations() * pairs),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    // what a pair puts into the files (log + trail): with WriteCost's
    // ns_per_byte, the part of ns_per_pair no renderer can remove
    state.counters["bytes_per_pair"] =
        (double)(file_bytes(base.str()) / (state.iterations() * pairs));
    SHLB_CHECK(shl_op_complete(op));
    shl_ledger_close(l);
}
BENCHMARK(Drain)
    ->Name("Snapshotter/Drain")
    ->ArgNames({"ring", "fs"})
    ->Args({4096, 0}) // base path on /tmp (ext4 here)
    ->Args({4096, 1}) // on /dev/shm (tmpfs)
    ->UseRealTime();

// The floor under the drain's writes, on this machine: write(2) of
// `chunk` bytes appended to a file (what the drain does with a batch's
// buffer of one file: ~64-128 KiB), in ns per byte (fs:0 /tmp, ext4 here;
// fs:1 /dev/shm, tmpfs); chunk:64 is a syscall's fixed cost (ns_per_call).
// The file is truncated every 64 MiB so the page cache does not grow.
void
WriteCost(benchmark::State &state)
{
    shlb::TempBase base("wcost", state.range(1) ? "/dev/shm" : "/tmp");
    const size_t chunk = (size_t)state.range(0);
    std::string path = base.str() + "/f";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0)
        std::abort();
    std::vector<char> buf(chunk, 'x');
    size_t in_file = 0;
    for (auto _ : state) {
        if (write(fd, buf.data(), chunk) != (ssize_t)chunk)
            std::abort();
        in_file += chunk;
        if (in_file >= (64u << 20)) {
            state.PauseTiming();
            if (ftruncate(fd, 0) != 0)
                std::abort();
            in_file = 0;
            state.ResumeTiming();
        }
    }
    close(fd);
    state.SetBytesProcessed((int64_t)(state.iterations() * chunk));
    state.counters["ns_per_byte"] = benchmark::Counter(
        (double)(state.iterations() * chunk),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["ns_per_call"] = benchmark::Counter(
        (double)state.iterations(),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(WriteCost)
    ->Name("Snapshotter/WriteCost")
    ->ArgNames({"chunk", "fs"})
    ->Args({64, 0})
    ->Args({131072, 0})
    ->Args({131072, 1})
    ->UseRealTime();

// The fallback path: no snapshotter and a ring that is never drained, so
// every event is written to its files by the producer itself.
void
CallPairFull(benchmark::State &state)
{
    shlb::TempBase base("snapfull");
    shl_ledger_opts o = shlb::opts(64, 64, 4096);
    o.snapshotter = false;
    o.max_events = 64;
    shl_ledger *l = shlb::open_ledger(base, "bench", o);
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, nullptr, nullptr, &op));
    for (int i = 0; i < 64; i++) { // fill the ring
        shl_call *c = nullptr;
        SHLB_CHECK(shl_call_start(op, nullptr, &c));
        SHLB_CHECK(shl_call_end(c, nullptr));
        SHLB_CHECK(shl_call_release(c));
    }
    for (auto _ : state) {
        shl_call *c = nullptr;
        SHLB_CHECK(shl_call_start(op, nullptr, &c));
        SHLB_CHECK(shl_call_end(c, nullptr));
        SHLB_CHECK(shl_call_release(c));
    }
    shl_segment_info info;
    SHLB_CHECK(shl_reader_info(shl_ledger_reader(l), &info));
    state.counters["fallback"] = (double)info.events_fallback;
    SHLB_CHECK(shl_op_leave(op, true));
    shl_ledger_close(l);
}
BENCHMARK(CallPairFull)->Name("Snapshotter/CallPairRingFull")->UseRealTime();

shl_snapshot *
big_snapshot(size_t frames)
{
    auto *s = static_cast<shl_snapshot *>(std::calloc(1, sizeof(shl_snapshot)));
    std::snprintf(s->operation_id, sizeof(s->operation_id),
                  "20260122T12:00:00.000-cli-a1b2c3d4");
    std::snprintf(s->initiator_id, sizeof(s->initiator_id), "cli");
    int64_t t0 = 1769083200000123ll;
    s->start_time_us = t0;
    s->last_heartbeat_us = t0;
    s->frame_count = frames;
    s->frames = static_cast<shl_call_frame *>(
        std::calloc(frames, sizeof(shl_call_frame)));
    for (size_t i = 0; i < frames; i++) {
        shl_call_frame *f = &s->frames[i];
        std::snprintf(f->participant_id, sizeof(f->participant_id), "p%zu",
                      i % 16);
        std::snprintf(f->call_id, sizeof(f->call_id), "call_p%zu_%zu_%04zx",
                      i % 16, i, i & 0xffff);
        f->pid = 1000 + (int32_t)(i % 16);
        f->start_time_us = t0 + (int64_t)i * 1000;
        f->last_heartbeat_us = t0 + (int64_t)i * 1000 + 17;
        f->fail_on_crash = true;
        f->session_id = 1;
        f->heartbeat_age_ms = 12;
    }
    return s;
}

void
ToJson(benchmark::State &state)
{
    shl_snapshot *s = big_snapshot((size_t)state.range(0));
    size_t bytes = 0;
    for (auto _ : state) {
        char *text = nullptr;
        SHLB_CHECK(shl_snapshot_to_json(s, 0, &text));
        bytes = std::strlen(text);
        std::free(text);
    }
    state.counters["bytes"] = (double)bytes;
    shl_snapshot_free(s);
}
BENCHMARK(ToJson)
    ->Name("Snapshotter/ToJson")
    ->ArgName("frames")
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond);

void
TakeToJson(benchmark::State &state)
{
    const int frames = (int)state.range(0);
    shlb::TempBase base("snapjson");
    shl_ledger_opts o = shlb::opts(64, 64, 16384);
    o.snapshotter = false;
    shl_ledger *l = shlb::open_ledger(base, "bench", o);
    shl_op *op = nullptr;
    SHLB_CHECK(shl_op_create(l, nullptr, nullptr, &op));
    std::vector<shl_call *> calls((size_t)frames);
    for (int i = 0; i < frames; i++) {
        SHLB_CHECK(shl_call_start(op, nullptr, &calls[(size_t)i]));
        if ((i & 1023) == 1023)
            SHLB_CHECK(shl__snapshotter_flush(l, 10000));
    }
    SHLB_CHECK(shl__snapshotter_flush(l, 10000));
    std::string id = shl_op_id(op);
    for (auto _ : state) {
        shl_snapshot *s = nullptr;
        SHLB_CHECK(shl_reader_snapshot(shl_ledger_reader(l), id.c_str(), &s));
        char *text = nullptr;
        SHLB_CHECK(shl_snapshot_to_json(s, 0, &text));
        benchmark::DoNotOptimize(text);
        std::free(text);
        shl_snapshot_free(s);
    }
    SHLB_CHECK(shl_op_leave(op, true));
    shl_ledger_close(l);
}
BENCHMARK(TakeToJson)
    ->Name("Snapshotter/TakeToJson")
    ->ArgName("frames")
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
