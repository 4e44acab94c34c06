// bench/bench_liveness.cc: how fast a crash, an abort or a hang reaches the
// other processes of an operation (issue 13). Real processes (fork), the
// public API only, except the crash-point seam for the in-lock case.
//
//   Liveness/Crash/when:0      SIGKILL right after the victim's call started
//                              (it joined microseconds before) -> on_failure
//                              in the initiator, another process
//   Liveness/Crash/when:1/window_ms:W
//                              SIGKILL at a random time 0..W ms after the
//                              victim joined and started its call
//   Liveness/Crash/when:2      the victim dies holding the structure lock
//                              (crash point inside a temp-resource
//                              registration, after its call started); the
//                              kill time is the victim's clock right before
//                              the registration
//   Liveness/Abort/others:3/settled:S
//                              shl_op_set_abort_flag -> the last of 3 other
//                              processes returns from shl_op_wait_abort.
//                              settled:1 sets the flag once every thread of
//                              the members (and the initiator's own library
//                              threads) sleeps, i.e. each member is in its
//                              wait and its monitor has finished the passes
//                              of its start-up; settled:0 sets it as soon as
//                              the members said they joined (their start-up
//                              and their joins' doorbells still running).
//                              Either way a member that returned holds still
//                              (no leave, no exit) until all three returned,
//                              so the first one's leave does not wake the
//                              others' threads inside the measurement.
//                              Counters on_abort_p50_us / _p99_us: the
//                              same for the last of the members' on_abort
//                              callbacks (the monitor's futex thread).
//   Liveness/Stale/stale_ms:S  SIGSTOP -> on_heartbeat_error(heartbeatStale)
//                              in the initiator; staleThreshold S ms
//                              (observer and victim), so it is bounded by
//                              S + 2 * min(1 s, S / 4)
//   Liveness/JoinLeaveCrossProcess
//                              shl_op_join + shl_op_leave while the other
//                              member lives in another process (its doorbell
//                              is rung on both); compare Paths/JoinLeave
//
// Crash and abort cases run with the default heartbeat interval (5 s) and
// stale threshold (15 s). Each sample is one iteration with manual time (the
// latency); counters: p50_us, p99_us, max_us over the samples, and samples.
// One repetition each (the sample count is the statistic), so the JSON has
// iteration entries, not aggregates.
#include "common.h"

#include <dirent.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include <algorithm>
#include <random>

extern "C" {
// The crash-point seam of src/base/crash.h (internal; the bench links the
// object library).
enum shl__crash_mode { SHL__CRASH_SIGKILL = 0, SHL__CRASH_EXIT = 1 };
void shl__crash_arm(const char *name, enum shl__crash_mode mode);
}

namespace {

constexpr int kKills = 200;

// Shared between the bench process and its children.
struct Shared {
    std::atomic<int64_t> t[8];
    std::atomic<uint32_t> returned; // Abort: members that returned
    char op_id[256];
};

Shared *
shared_map()
{
    void *p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("mmap");
        std::abort();
    }
    return new (p) Shared();
}

shl_ledger_opts
live_opts(int64_t stale_ms = 0)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o); // heartbeat 5 s, stale 15 s
    if (stale_ms)
        o.stale_threshold_ms = stale_ms;
    o.timeout_ms = 10000;
    o.snapshotter = false; // no files: only the liveness path
    return o;
}

// With SHLB_TRACE set, print the time of each cause (kill, abort flag) for
// the hop trace of a -DSHL_HOP_TRACE build (docs/benchmarks.md).
void
trace_cause(const char *what, int64_t t)
{
    static const bool on = std::getenv("SHLB_TRACE") != nullptr;
    if (on)
        std::fprintf(stderr, "cause %d %s %lld\n", (int)getpid(), what,
                     (long long)t);
}

void
set_counters(benchmark::State &state, std::vector<double> &us)
{
    if (us.empty())
        return;
    std::sort(us.begin(), us.end());
    auto pct = [&](double q) {
        size_t i = (size_t)(q * (double)(us.size() - 1) + 0.5);
        return us[std::min(i, us.size() - 1)];
    };
    state.counters["p50_us"] = pct(0.50);
    state.counters["p99_us"] = pct(0.99);
    state.counters["max_us"] = us.back();
    state.counters["samples"] = (double)us.size();
}

void
on_failure_cb(shl_op *, const shl_failed_info *, void *u)
{
    auto *t = static_cast<std::atomic<int64_t> *>(u);
    int64_t z = 0;
    t->compare_exchange_strong(z, shlb::mono_ns());
}

// Abort: a member's on_abort stamps its time (the last of the three's is
// reported as on_abort_p50_us / on_abort_p99_us).
void
on_abort_cb(shl_op *, void *u)
{
    auto *t = static_cast<std::atomic<int64_t> *>(u);
    int64_t z = 0;
    t->compare_exchange_strong(z, shlb::mono_ns());
}

struct StaleSeen {
    std::atomic<int64_t> t{0};
};

void
on_hb_error_cb(shl_op *, const shl_heartbeat_error *e, void *u)
{
    if (e->type != SHL_HB_HEARTBEAT_STALE)
        return;
    auto *s = static_cast<StaleSeen *>(u);
    int64_t z = 0;
    s->t.compare_exchange_strong(z, shlb::mono_ns());
}

void
write_byte(int fd)
{
    char c = 1;
    if (write(fd, &c, 1) != 1)
        _exit(9);
}

bool
read_byte(int fd)
{
    char c;
    return read(fd, &c, 1) == 1;
}

// The victim: open, join, start a failOnCrash call, then per `when`.
[[noreturn]] void
victim(const char *base, const char *id, int when, int ready_fd, Shared *sh,
       const shl_ledger_opts &o)
{
    shl_ledger *l = nullptr;
    if (shl_ledger_open(&l, base, "victim", &o))
        _exit(2);
    shl_op *op = nullptr;
    if (shl_op_join(l, id, nullptr, &op))
        _exit(3);
    shl_call *c = nullptr;
    if (shl_call_start(op, nullptr, &c))
        _exit(4);
    if (when == 2) {
        shl__crash_arm("alloc.claimed", SHL__CRASH_SIGKILL);
        std::string path = std::string(base) + "/victim.tmp";
        sh->t[0].store(shlb::mono_ns());
        (void)shl_op_register_temp_resource(op, path.c_str());
        _exit(5); // not reached: the crash point kills us
    }
    write_byte(ready_fd);
    for (;;)
        pause();
}

void
Crash(benchmark::State &state)
{
    const int when = (int)state.range(0);
    const int window_ms = state.range(1) > 0 ? (int)state.range(1) : 0;
    shlb::TempBase base("live");
    shl_ledger_opts o = live_opts();
    shl_ledger *l = shlb::open_ledger(base, "initiator", o);
    Shared *sh = shared_map();
    std::mt19937 rng(12345);
    std::vector<double> us;
    for (auto _ : state) {
        std::atomic<int64_t> told{0};
        shl_op_callbacks cb;
        std::memset(&cb, 0, sizeof(cb));
        cb.on_failure = on_failure_cb;
        cb.user = &told;
        shl_op *op = nullptr;
        SHLB_CHECK(shl_op_create(l, "liveness", &cb, &op));
        int p[2];
        if (pipe(p) != 0)
            std::abort();
        sh->t[0].store(0);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            victim(base.c_str(), shl_op_id(op), when, p[1], sh, o);
        }
        close(p[1]);
        int64_t t_kill = 0;
        if (when == 2) {
            int st = 0;
            waitpid(pid, &st, 0);
            if (!WIFSIGNALED(st)) {
                state.SkipWithError("victim did not die at the crash point");
                break;
            }
            t_kill = sh->t[0].load();
        } else {
            if (!read_byte(p[0])) {
                state.SkipWithError("victim failed to start");
                break;
            }
            if (when == 1) {
                std::uniform_int_distribution<int> d(0, window_ms * 1000);
                struct timespec ts = {0, 0};
                int u = d(rng);
                ts.tv_sec = u / 1000000;
                ts.tv_nsec = (long)(u % 1000000) * 1000;
                nanosleep(&ts, nullptr);
            }
            t_kill = shlb::mono_ns();
            kill(pid, SIGKILL);
        }
        close(p[0]);
        shl_failed_info info;
        int rc = shl_op_wait_failure(op, 10000, &info);
        if (when != 2)
            waitpid(pid, nullptr, 0);
        if (rc != 0) {
            state.SkipWithError("no failure within 10 s");
            break;
        }
        // on_failure runs before the wait returns (same delivery)
        for (int i = 0; i < 1000 && told.load() == 0; i++)
            usleep(100);
        trace_cause("kill", t_kill);
        double lat = (double)(told.load() - t_kill) / 1e3;
        us.push_back(lat);
        state.SetIterationTime(lat / 1e6);
        SHLB_CHECK(shl_op_leave(op, true));
    }
    set_counters(state, us);
    shl_ledger_close(l);
    munmap(sh, sizeof(Shared));
}
BENCHMARK(Crash)
    ->Name("Liveness/Crash")
    ->ArgNames({"when", "window_ms"})
    ->Args({0, 0})
    ->Args({1, 1000})
    ->Args({2, 0})
    ->Iterations(kKills)
    ->Repetitions(1)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Every thread of `pid` sleeps (state S in /proc/<pid>/task/*/stat);
// `skip` is a thread not to look at (the caller). False if any runs, is
// runnable or cannot be read.
bool
all_threads_asleep(pid_t pid, pid_t skip)
{
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR *d = opendir(dir.c_str());
    if (!d)
        return false;
    bool asleep = true;
    while (struct dirent *e = readdir(d)) {
        if (e->d_name[0] == '.' || std::atoi(e->d_name) == skip)
            continue;
        std::string path = dir + "/" + e->d_name + "/stat";
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        char buf[512];
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n <= 0) {
            asleep = false;
            break;
        }
        buf[n] = 0;
        const char *rp = std::strrchr(buf, ')'); // comm may hold spaces
        if (!rp || rp[1] != ' ' || rp[2] != 'S') {
            asleep = false;
            break;
        }
    }
    closedir(d);
    return asleep;
}

// Wait (up to 2 s) until the members' threads and this process's library
// threads have all slept for two looks 200 us apart.
bool
settle(const std::vector<pid_t> &kids)
{
    pid_t self = getpid(), me = (pid_t)syscall(SYS_gettid);
    int calm = 0;
    for (int i = 0; i < 10000 && calm < 2; i++) {
        bool ok = all_threads_asleep(self, me);
        for (pid_t k : kids)
            ok = ok && all_threads_asleep(k, 0);
        calm = ok ? calm + 1 : 0;
        if (calm < 2)
            usleep(200);
    }
    return calm >= 2;
}

// A member that returned: hold still until all `others` have returned (the
// last one wakes the rest), so no leave runs inside the measurement.
void
hold_until_all_returned(Shared *sh, uint32_t others)
{
    uint32_t n = sh->returned.fetch_add(1) + 1;
    auto *w = reinterpret_cast<uint32_t *>(&sh->returned);
    if (n >= others) {
        syscall(SYS_futex, w, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
        return;
    }
    while ((n = sh->returned.load()) < others)
        syscall(SYS_futex, w, FUTEX_WAIT, n, nullptr, nullptr, 0);
}

void
Abort(benchmark::State &state)
{
    const int others = (int)state.range(0);
    const bool settled = state.range(1) != 0;
    shlb::TempBase base("liveab");
    shl_ledger_opts o = live_opts();
    shl_ledger *l = shlb::open_ledger(base, "initiator", o);
    Shared *sh = shared_map();
    std::vector<double> us, cb_us;
    for (auto _ : state) {
        shl_op *op = nullptr;
        SHLB_CHECK(shl_op_create(l, "abort", nullptr, &op));
        int p[2];
        if (pipe(p) != 0)
            std::abort();
        std::vector<pid_t> kids;
        sh->returned.store(0);
        for (int i = 0; i < others; i++) {
            sh->t[i].store(0);
            sh->t[4 + i].store(0);
            pid_t pid = fork();
            if (pid == 0) {
                close(p[0]);
                shl_ledger *cl = nullptr;
                std::string id = "member" + std::to_string(i);
                if (shl_ledger_open(&cl, base.c_str(), id.c_str(), &o))
                    _exit(2);
                shl_op_callbacks cb;
                std::memset(&cb, 0, sizeof(cb));
                cb.on_abort = on_abort_cb;
                cb.user = &sh->t[4 + i];
                shl_op *cop = nullptr;
                if (shl_op_join(cl, shl_op_id(op), &cb, &cop))
                    _exit(3);
                // map the shared page now: its first write after fork
                // faults (tens of microseconds) on a CPU another member
                // may be waiting for
                sh->t[i].store(0);
                write_byte(p[1]);
                if (shl_op_wait_abort(cop, 10000) != 0)
                    _exit(4);
                sh->t[i].store(shlb::mono_ns());
                hold_until_all_returned(sh, (uint32_t)others);
                for (int w = 0; w < 10000 && sh->t[4 + i].load() == 0; w++)
                    usleep(1000); // on_abort, then leave
                trace_cause("returned", sh->t[i].load());
                shl_op_leave(cop, true);
                shl_ledger_close(cl);
                _exit(0);
            }
            kids.push_back(pid);
        }
        close(p[1]);
        bool ok = true;
        for (int i = 0; i < others; i++)
            ok = ok && read_byte(p[0]);
        close(p[0]);
        if (ok && settled && !settle(kids)) {
            for (pid_t k : kids)
                kill(k, SIGKILL);
            for (pid_t k : kids)
                waitpid(k, nullptr, 0);
            state.SkipWithError("the members did not fall asleep within 2 s");
            break;
        }
        int64_t t0 = shlb::mono_ns();
        SHLB_CHECK(shl_op_set_abort_flag(op, true));
        trace_cause("abort", t0);
        for (pid_t k : kids) {
            int st = 0;
            waitpid(k, &st, 0);
            ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        if (!ok) {
            state.SkipWithError("a member failed");
            break;
        }
        int64_t last = 0, last_cb = 0;
        for (int i = 0; i < others; i++) {
            last = std::max(last, sh->t[i].load());
            int64_t c = sh->t[4 + i].load();
            last_cb = c && last_cb >= 0 ? std::max(last_cb, c) : -1;
        }
        if (last_cb > 0)
            cb_us.push_back((double)(last_cb - t0) / 1e3);
        double lat = (double)(last - t0) / 1e3;
        us.push_back(lat);
        state.SetIterationTime(lat / 1e6);
        SHLB_CHECK(shl_op_leave(op, true));
    }
    set_counters(state, us);
    if (!cb_us.empty()) {
        std::sort(cb_us.begin(), cb_us.end());
        state.counters["on_abort_p50_us"] = cb_us[(cb_us.size() - 1) / 2];
        state.counters["on_abort_p99_us"] =
            cb_us[(size_t)(0.99 * (double)(cb_us.size() - 1) + 0.5)];
    }
    shl_ledger_close(l);
    munmap(sh, sizeof(Shared));
}
BENCHMARK(Abort)
    ->Name("Liveness/Abort")
    ->ArgNames({"others", "settled"})
    ->Args({3, 1})
    ->Args({3, 0})
    ->Iterations(kKills)
    ->Repetitions(1)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

void
Stale(benchmark::State &state)
{
    const int stale_ms = (int)state.range(0);
    shlb::TempBase base("livest");
    shl_ledger_opts o = live_opts(stale_ms);
    shl_ledger *l = shlb::open_ledger(base, "initiator", o);
    Shared *sh = shared_map();
    std::vector<double> us;
    for (auto _ : state) {
        StaleSeen seen;
        shl_op_callbacks cb;
        std::memset(&cb, 0, sizeof(cb));
        cb.on_heartbeat_error = on_hb_error_cb;
        cb.user = &seen;
        shl_op *op = nullptr;
        SHLB_CHECK(shl_op_create(l, "stale", &cb, &op));
        int p[2];
        if (pipe(p) != 0)
            std::abort();
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            victim(base.c_str(), shl_op_id(op), 0, p[1], sh, o);
        }
        close(p[1]);
        bool ok = read_byte(p[0]);
        close(p[0]);
        usleep(20000); // let its monitor store a heartbeat or two
        int64_t t0 = shlb::mono_ns();
        kill(pid, SIGSTOP);
        int64_t deadline = t0 + 10 * (int64_t)1000000000;
        while (ok && seen.t.load() == 0 && shlb::mono_ns() < deadline)
            usleep(200);
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        if (!ok || seen.t.load() == 0) {
            state.SkipWithError("no heartbeatStale within 10 s");
            break;
        }
        double lat = (double)(seen.t.load() - t0) / 1e3;
        us.push_back(lat);
        state.SetIterationTime(lat / 1e6);
        // the victim is gone: the failure is delivered; then leave
        shl_failed_info info;
        (void)shl_op_wait_failure(op, 10000, &info);
        SHLB_CHECK(shl_op_leave(op, true));
    }
    set_counters(state, us);
    shl_ledger_close(l);
    munmap(sh, sizeof(Shared));
}
BENCHMARK(Stale)
    ->Name("Liveness/Stale")
    ->ArgName("stale_ms")
    ->Arg(400)
    ->Iterations(20)
    ->Repetitions(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void
JoinLeaveCrossProcess(benchmark::State &state)
{
    shlb::TempBase base("livejl");
    shl_ledger_opts o = shlb::opts();
    o.snapshot_period_ms = 10000; // as Paths/JoinLeave
    Shared *sh = shared_map();
    int p[2];
    if (pipe(p) != 0)
        std::abort();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        shl_ledger *cl = nullptr;
        if (shl_ledger_open(&cl, base.c_str(), "member", &o))
            _exit(2);
        shl_op *cop = nullptr;
        if (shl_op_create(cl, "jl", nullptr, &cop))
            _exit(3);
        std::snprintf(sh->op_id, sizeof(sh->op_id), "%s", shl_op_id(cop));
        write_byte(p[1]);
        for (;;)
            pause();
    }
    close(p[1]);
    if (!read_byte(p[0]))
        std::abort();
    close(p[0]);
    shl_ledger *l = shlb::open_ledger(base, "joiner", o);
    for (auto _ : state) {
        shl_op *op = nullptr;
        SHLB_CHECK(shl_op_join(l, sh->op_id, nullptr, &op));
        SHLB_CHECK(shl_op_leave(op, false));
    }
    shl_ledger_close(l);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    munmap(sh, sizeof(Shared));
}
BENCHMARK(JoinLeaveCrossProcess)->Name("Liveness/JoinLeaveCrossProcess");

} // namespace

BENCHMARK_MAIN();
