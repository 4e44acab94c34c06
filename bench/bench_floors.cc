// bench_floors: the physical limits the hot paths are judged against,
// written directly with std::atomic and pthread in a MAP_SHARED page (the
// same kind of memory the segment is), so they cost what the hardware and
// libc cost and nothing of ours.
//
//   Floor/HeartbeatStore   clock_gettime(CLOCK_MONOTONIC) + one release
//                          store into a cache line (floor of a heartbeat)
//   Floor/RobustMutex      uncontended lock+unlock of a robust,
//                          process-shared mutex (floor of a structural change)
//   Floor/RobustMutexClock the same through pthread_mutex_clocklock with a
//                          deadline, as shl__lock does (context, not a floor)
//   Floor/SeqlockRead512   one consistent seqlock copy of a 512-byte record
//   Floor/ClockMonotonic   clock_gettime alone (context)
#include "common.h"

#include <pthread.h>

#include <atomic>
#include <cstring>
#include <new>

namespace {

// One MAP_SHARED anonymous mapping (shared with forked children, like shm).
void *
shared_page(size_t size)
{
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("mmap");
        std::abort();
    }
    std::memset(p, 0, size);
    return p;
}

struct alignas(64) HeartbeatSlot {
    std::atomic<int64_t> ns;
};

void
Floor_HeartbeatStore(benchmark::State &state)
{
    void *page = shared_page(4096);
    auto *slot = new (page) HeartbeatSlot;
    for (auto _ : state) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        slot->ns.store((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
                       std::memory_order_release);
    }
    benchmark::DoNotOptimize(slot->ns.load());
    munmap(page, 4096);
}
BENCHMARK(Floor_HeartbeatStore)->Name("Floor/HeartbeatStore");

void
Floor_ClockMonotonic(benchmark::State &state)
{
    for (auto _ : state) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        benchmark::DoNotOptimize(ts);
    }
}
BENCHMARK(Floor_ClockMonotonic)->Name("Floor/ClockMonotonic");

pthread_mutex_t *
robust_mutex(void *page)
{
    auto *m = static_cast<pthread_mutex_t *>(page);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(m, &a) != 0)
        std::abort();
    pthread_mutexattr_destroy(&a);
    return m;
}

void
Floor_RobustMutex(benchmark::State &state)
{
    void *page = shared_page(4096);
    pthread_mutex_t *m = robust_mutex(page);
    for (auto _ : state) {
        if (pthread_mutex_lock(m) != 0)
            std::abort();
        pthread_mutex_unlock(m);
    }
    pthread_mutex_destroy(m);
    munmap(page, 4096);
}
BENCHMARK(Floor_RobustMutex)->Name("Floor/RobustMutex");

void
Floor_RobustMutexClock(benchmark::State &state)
{
    void *page = shared_page(4096);
    pthread_mutex_t *m = robust_mutex(page);
    for (auto _ : state) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 2;
        if (pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts) != 0)
            std::abort();
        pthread_mutex_unlock(m);
    }
    pthread_mutex_destroy(m);
    munmap(page, 4096);
}
BENCHMARK(Floor_RobustMutexClock)->Name("Floor/RobustMutexClock");

// A 512-byte record behind a sequence counter (ck_sequence style).
struct alignas(64) SeqRecord {
    std::atomic<uint32_t> seq;
    char pad[60];
    char payload[512];
};

void
Floor_SeqlockRead512(benchmark::State &state)
{
    void *page = shared_page(8192);
    auto *r = new (page) SeqRecord;
    r->seq.store(0);
    std::memset(r->payload, 'x', sizeof(r->payload));
    alignas(64) char copy[512];
    uint64_t retries = 0;
    for (auto _ : state) {
        for (;;) {
            uint32_t s0 = r->seq.load(std::memory_order_acquire);
            if (s0 & 1u) {
                retries++;
                continue;
            }
            std::memcpy(copy, r->payload, sizeof(copy));
            std::atomic_thread_fence(std::memory_order_acquire);
            if (r->seq.load(std::memory_order_relaxed) == s0)
                break;
            retries++;
        }
        benchmark::DoNotOptimize(copy);
        benchmark::ClobberMemory();
    }
    state.counters["retries"] = (double)retries;
    munmap(page, 8192);
}
BENCHMARK(Floor_SeqlockRead512)->Name("Floor/SeqlockRead512");

} // namespace

BENCHMARK_MAIN();
