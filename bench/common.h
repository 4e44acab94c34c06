// bench/common.h: helpers shared by the benchmarks (C++17, Google Benchmark).
//
// The benchmarks call the public API only (<shmledger/shmledger.h>); the
// floors are written directly with std::atomic and pthread. Every benchmark
// works in its own base directory under /tmp and removes the directory and
// its segment when done, so runs never share a segment.
#ifndef SHL_BENCH_COMMON_H
#define SHL_BENCH_COMMON_H

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "shmledger/shmledger.h"

namespace shlb {

// Abort the benchmark binary on an unexpected error: a benchmark that
// silently measures an error path is worse than none.
#define SHLB_CHECK(expr)                                                       \
    do {                                                                       \
        int shlb_rc_ = (expr);                                                 \
        if (shlb_rc_ < 0) {                                                    \
            std::fprintf(stderr, "%s:%d: %s = %d (%s) %s\n", __FILE__,         \
                         __LINE__, #expr, shlb_rc_, shl_strerror(shlb_rc_),    \
                         shl_errmsg());                                        \
            std::abort();                                                      \
        }                                                                      \
    } while (0)

inline int64_t
mono_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// rm -rf of a directory we created (no symlinks followed: nftw-free, we
// only ever create flat trees of regular files and a backup/ dir).
inline void
remove_tree(const std::string &dir)
{
    if (dir.empty() ||
        (dir.rfind("/tmp/", 0) != 0 && dir.rfind("/dev/shm/", 0) != 0))
        return; // never outside /tmp or /dev/shm
    std::string cmd = "rm -rf -- '" + dir + "'";
    if (std::system(cmd.c_str()) != 0)
        std::fprintf(stderr, "warning: could not remove %s\n", dir.c_str());
}

// A fresh base directory <root>/shlbench-<tag>-XXXXXX (root /tmp, an ext4
// disk here, or /dev/shm, tmpfs); removed (with its segment) by the
// destructor.
class TempBase
{
  public:
    explicit TempBase(const char *tag, const char *root = nullptr)
    {
        // SHLB_ROOT=/dev/shm: every bench's files on tmpfs (a run that
        // leaves the disk's write-back out)
        if (!root)
            root = std::getenv("SHLB_ROOT") ? std::getenv("SHLB_ROOT") : "/tmp";
        std::string t = std::string(root) + "/shlbench-" + tag + "-XXXXXX";
        std::vector<char> buf(t.begin(), t.end());
        buf.push_back(0);
        if (!mkdtemp(buf.data())) {
            std::perror("mkdtemp");
            std::abort();
        }
        path_ = buf.data();
    }
    ~TempBase()
    {
        (void)shl_segment_unlink(path_.c_str());
        remove_tree(path_);
    }
    TempBase(const TempBase &) = delete;
    TempBase &operator=(const TempBase &) = delete;
    const char *c_str() const { return path_.c_str(); }
    const std::string &str() const { return path_; }

  private:
    std::string path_;
};

// Ledger options with the given capacities (0 = library default). A long
// heartbeat interval and stale threshold: nothing periodic should interfere.
inline shl_ledger_opts
opts(uint32_t parts = 0, uint32_t ops = 0, uint32_t frames = 0)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    if (parts)
        o.max_participants = parts;
    if (ops)
        o.max_operations = ops;
    if (frames)
        o.max_frames = frames;
    o.heartbeat_interval_ms = 3600 * 1000;
    o.stale_threshold_ms = 3600 * 1000;
    o.timeout_ms = 10000;
    return o;
}

inline shl_ledger *
open_ledger(const TempBase &b, const char *pid_name, const shl_ledger_opts &o)
{
    shl_ledger *l = nullptr;
    SHLB_CHECK(shl_ledger_open(&l, b.c_str(), pid_name, &o));
    return l;
}

// One startCall + end + release: the unit of every call benchmark.
inline void
call_pair(shl_op *op)
{
    shl_call *c = nullptr;
    SHLB_CHECK(shl_call_start(op, nullptr, &c));
    SHLB_CHECK(shl_call_end(c, nullptr));
    SHLB_CHECK(shl_call_release(c));
}

// ---------------------------------------------------------------------------
// Parallel runs. Each worker runs make_worker(i) first (its setup: open a
// ledger, create or join an operation; not timed), which returns the timed
// work. Workers report ready, the parent releases them all at once, and the
// parent's clock runs from the release to the last worker's end.

using WorkFn = std::function<void()>;
struct Worker {
    WorkFn work;     // timed
    WorkFn teardown; // after the clock stops (leave, close); may be empty
};
using MakeWorker = std::function<Worker(int)>;

// n forked children. A child that fails aborts, and the parent aborts with
// it (waitpid status), so a run never reports numbers from a broken child.
inline double
run_forked(int n, const MakeWorker &make_worker)
{
    int ready[2], go[2], done[2];
    if (pipe(ready) != 0 || pipe(go) != 0 || pipe(done) != 0) {
        std::perror("pipe");
        std::abort();
    }
    std::vector<pid_t> pids;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) {
            std::perror("fork");
            std::abort();
        }
        if (p == 0) {
            close(ready[0]);
            close(go[1]);
            close(done[0]);
            Worker w = make_worker(i);
            char c = 'r';
            if (write(ready[1], &c, 1) != 1)
                _exit(90);
            if (read(go[0], &c, 1) != 1)
                _exit(91);
            w.work();
            c = 'd';
            if (write(done[1], &c, 1) != 1)
                _exit(92);
            if (w.teardown)
                w.teardown();
            _exit(0);
        }
        pids.push_back(p);
    }
    close(ready[1]);
    close(go[0]);
    close(done[1]);
    for (int i = 0; i < n; i++) {
        char c;
        if (read(ready[0], &c, 1) != 1) { // EOF: every child died
            std::fprintf(stderr, "a worker died during its setup\n");
            std::abort();
        }
    }
    std::string g((size_t)n, 'g');
    int64_t t0 = mono_ns();
    if (write(go[1], g.data(), g.size()) != (ssize_t)g.size())
        std::abort();
    for (int i = 0; i < n; i++) {
        char c;
        if (read(done[0], &c, 1) != 1)
            break; // a child died: waitpid below reports it
    }
    int64_t t1 = mono_ns();
    bool ok = true;
    for (pid_t p : pids) {
        int st = 0;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            std::fprintf(stderr, "worker %d failed (status %#x)\n", (int)p,
                         st);
            ok = false;
        }
    }
    close(ready[0]);
    close(go[1]);
    close(done[0]);
    if (!ok)
        std::abort();
    return (double)(t1 - t0) * 1e-9;
}

// n threads of this process, same protocol.
inline double
run_threads(int n, const MakeWorker &make_worker)
{
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<int> finished{0};
    std::atomic<int64_t> t_end{0};
    std::vector<Worker> ws((size_t)n);
    std::vector<std::thread> ts;
    for (int i = 0; i < n; i++)
        ts.emplace_back([&, i] {
            ws[(size_t)i] = make_worker(i);
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire))
                std::this_thread::yield();
            ws[(size_t)i].work();
            if (finished.fetch_add(1) + 1 == n)
                t_end.store(mono_ns());
        });
    while (ready.load() < n)
        std::this_thread::yield();
    int64_t t0 = mono_ns();
    go.store(true, std::memory_order_release);
    for (auto &t : ts)
        t.join();
    int64_t t1 = t_end.load();
    for (auto &w : ws)
        if (w.teardown)
            w.teardown();
    return (double)(t1 - t0) * 1e-9;
}

} // namespace shlb

#endif // SHL_BENCH_COMMON_H
