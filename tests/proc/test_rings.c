/* test_rings.c: the per-producer event rings (ARCHITECTURE §7.3).
 *
 *  - each thread of a ledger takes its own ring, gives it back when it
 *    exits; every line of every thread lands once, in the thread's order;
 *  - a full ring with nobody draining: the producer drains it itself, no
 *    line is written directly (ev_fallback stays 0), order kept;
 *  - a drainer killed at each step of a batch (after the journal, while
 *    writing, after the writes): the next drainer finishes it, every line
 *    once, the trail's seq strictly increasing (the redo reuses the
 *    numbers the journal recorded; a batch never begun takes them again);
 *  - garbage in a ring: the checker names it, the drain skips it (counted)
 *    and goes on. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files/events.h"
#include "files/snapshotter.h"
#include "internal.h"
#include "shl_proc.h"
#include "shm/segment.h"
#include "shl_test.h"
#include "shl_text.h"

static shl_ledger *
open_l(const char *base, const char *id, bool snap, uint32_t max_events)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.snapshotter = snap;
    if (max_events)
        o.max_events = max_events;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, id, &o));
    return l;
}

/* Lines "<tag> <n>" of file path: each n of each tag once, in order. */
static void
assert_lines_once_in_order(const char *path, const char *const *tags,
                           int ntags, int per_tag)
{
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    int next[8] = {0};
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = 0;
        for (int t = 0; t < ntags; t++) {
            char pre[32];
            snprintf(pre, sizeof(pre), "] %s ", tags[t]);
            char *m = strstr(p, pre);
            if (!m)
                continue;
            int n = atoi(m + strlen(pre));
            if (n != next[t])
                fail_msg("%s: line %d where %d was due", tags[t], n,
                         next[t]);
            next[t]++;
        }
        p = nl + 1;
    }
    for (int t = 0; t < ntags; t++)
        assert_int_equal(next[t], per_tag);
    free(text);
}

struct thr {
    shl_op *op;
    const char *tag;
    int n;
    uint64_t owner; /* the owner word of the ring it took */
    shl_ledger *l;
};

static uint64_t
my_ring_word(shl_ledger *l, uint32_t *count)
{
    /* the ring whose owner names this ledger's slot and a thread index
     * nobody else's: the test's threads post one at a time before this */
    struct shl__hdr *h = l->seg.hdr;
    uint64_t last = 0;
    *count = 0;
    for (uint32_t i = 0; i < h->ev_nrings; i++) {
        uint64_t w = atomic_load(&shl__ev_ring(h, i)->owner);
        if (w && SHL__EVOWNER_SLOT(w) == l->slot) {
            (*count)++;
            last = w;
        }
    }
    return last;
}

static void *
thr_main(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < t->n; i++) {
        char msg[48];
        snprintf(msg, sizeof(msg), "%s %d", t->tag, i);
        if (shl_op_log(t->op, SHL_LOG_INFO, msg) != 0)
            return (void *)1;
    }
    return NULL;
}

static void
test_rings_per_thread(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "rngthr");
    shl_ledger *l = open_l(base, "cli", false, 0);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "start"));
    uint32_t before = 0;
    (void)my_ring_word(l, &before); /* the creating thread's ring */
    assert_int_equal(before, 1);
    enum { T = 3, N = 3000 };
    static const char *const tags[T] = {"alpha", "beta", "gamma"};
    struct thr th[T];
    pthread_t tid[T];
    for (int i = 0; i < T; i++) {
        th[i] = (struct thr){.op = op, .tag = tags[i], .n = N, .l = l};
        assert_int_equal(pthread_create(&tid[i], NULL, thr_main, &th[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        void *rv = NULL;
        assert_int_equal(pthread_join(tid[i], &rv), 0);
        assert_null(rv);
    }
    /* the threads gave their rings back when they exited */
    uint32_t after = 0;
    (void)my_ring_word(l, &after);
    assert_int_equal(after, 1);
    assert_shl_ok(shl__snapshotter_flush(l, 10000));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_pending, 0);
    assert_int_equal(info.events_fallback, 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, shl_op_id(op));
    assert_lines_once_in_order(path, tags, T, N);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* Threads alive at once take different rings. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int posted, go;
};

struct thr2 {
    shl_op *op;
    struct gate *g;
};

static void *
thr_hold(void *arg)
{
    struct thr2 *t = arg;
    (void)shl_op_log(t->op, SHL_LOG_INFO, "hold 0");
    pthread_mutex_lock(&t->g->mu);
    t->g->posted++;
    pthread_cond_broadcast(&t->g->cv);
    while (!t->g->go)
        pthread_cond_wait(&t->g->cv, &t->g->mu);
    pthread_mutex_unlock(&t->g->mu);
    return NULL;
}

static void
test_rings_distinct_while_alive(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "rngdis");
    shl_ledger *l = open_l(base, "cli", false, 0);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "start"));
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
                     0};
    enum { T = 4 };
    struct thr2 th[T];
    pthread_t tid[T];
    for (int i = 0; i < T; i++) {
        th[i] = (struct thr2){.op = op, .g = &g};
        assert_int_equal(pthread_create(&tid[i], NULL, thr_hold, &th[i]), 0);
    }
    pthread_mutex_lock(&g.mu);
    while (g.posted < T)
        pthread_cond_wait(&g.cv, &g.mu);
    uint32_t n = 0;
    (void)my_ring_word(l, &n);
    assert_int_equal(n, T + 1); /* the creator's and one per thread */
    g.go = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < T; i++)
        pthread_join(tid[i], NULL);
    (void)my_ring_word(l, &n);
    assert_int_equal(n, 1);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    /* closed: every ring of the ledger is free again */
    shl_ledger *l2 = open_l(base, "cli2", false, 0);
    struct shl__hdr *h = l2->seg.hdr;
    for (uint32_t i = 0; i < h->ev_nrings; i++)
        assert_int_equal(atomic_load(&shl__ev_ring(h, i)->owner), 0);
    shl_ledger_close(l2);
    shl_test_cleanup(base);
}

/* A full ring, no snapshotter anywhere: the producer drains its own ring
 * (the drain byte is free) instead of writing lines itself. */
static void
test_rings_full_drains_own(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "rngful");
    shl_ledger *l = open_l(base, "cli", false, 8); /* one 4 KiB ring */
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    enum { N = 5000 };
    static const char *const tags[1] = {"full"};
    for (int i = 0; i < N; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "full %d", i);
        assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, msg));
    }
    assert_shl_ok(shl__snapshotter_flush(l, 10000));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_fallback, 0);
    assert_int_equal(info.events_pending, 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, shl_op_id(op));
    assert_lines_once_in_order(path, tags, 1, N);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A full ring while another drainer holds the drain byte: the producer
 * sleeps until it can go on (woken by the drainer, or every millisecond to
 * try the byte itself), it does not spin. A producer that spun on
 * sched_yield and a failing try-lock took the CPU the drainer needed: on
 * 2 cores, two producers made fewer pairs per second than one (issue 14).
 * Every line lands once, in order, once the byte is free again. */
struct sleeper {
    shl_op *op;
    int n;
    int64_t cpu_ns; /* this thread's CPU time over its posts */
    atomic_bool done;
};

static int64_t
thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
sleeper_main(void *arg)
{
    struct sleeper *t = arg;
    int64_t c0 = thread_cpu_ns();
    for (int i = 0; i < t->n; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "full %d", i);
        if (shl_op_log(t->op, SHL_LOG_INFO, msg) != 0)
            return (void *)1;
    }
    t->cpu_ns = thread_cpu_ns() - c0;
    atomic_store(&t->done, true);
    return NULL;
}

static void
test_rings_full_sleeps_while_drained_elsewhere(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "rngslp");
    shl_ledger *l = open_l(base, "cli", false, 8); /* one 4 KiB ring */
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl__snapshotter_flush(l, 10000));
    /* another open file description of the segment: "another drainer" */
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", l->seg.fd);
    int other = open(self, O_RDWR | O_CLOEXEC);
    assert_true(other >= 0);
    assert_int_equal(shl__ofd_trylock(other, SHL__LOCK_DRAIN), 0);

    enum { N = 500 }; /* ~15 KiB of records: the 4 KiB ring fills */
    static const char *const tags[1] = {"full"};
    struct sleeper t = {.op = op, .n = N};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sleeper_main, &t), 0);
    /* hold the byte 300 ms: the producer must stay blocked all along */
    int64_t until = shl_test_now_ms() + 300;
    while (shl_test_now_ms() < until) {
        assert_false(atomic_load(&t.done));
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    shl__ofd_unlock(other, SHL__LOCK_DRAIN);
    close(other);
    void *rv = NULL;
    assert_int_equal(pthread_join(th, &rv), 0);
    assert_null(rv);
    /* asleep, not spinning: a spinning producer burns about the whole
     * 300 ms (a core of its own) */
    if (t.cpu_ns > 100 * 1000000ll)
        fail_msg("the blocked producer used %lld ms of CPU in 300 ms",
                 (long long)(t.cpu_ns / 1000000));
    assert_shl_ok(shl__snapshotter_flush(l, 10000));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_fallback, 0);
    assert_int_equal(info.events_pending, 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, shl_op_id(op));
    assert_lines_once_in_order(path, tags, 1, N);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* The trail's seq values of file path: n of them, strictly increasing (a
 * line written twice, or renumbered by a redo, breaks it). */
static void
assert_seq_exact(const char *path, int n)
{
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    long long last = 0;
    int count = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = 0;
        long long seq = 0;
        assert_int_equal(sscanf(p, "{\"seq\":%lld", &seq), 1);
        if (seq <= last)
            fail_msg("trail seq %lld after %lld", seq, last);
        last = seq;
        count++;
        p = nl + 1;
    }
    assert_int_equal(count, n);
    free(text);
}

static void
test_rings_drainer_killed_each_step(void **state)
{
    (void)state;
    static const char *const points[] = {"drain.journal", "drain.inflight",
                                         "drain.wrote", "drain.done"};
    for (size_t k = 0; k < sizeof(points) / sizeof(points[0]); k++) {
        char base[512];
        shl_test_base(base, sizeof(base), "rngkil");
        shl_ledger *l = open_l(base, "cli", false, 0);
        shl_op *op = NULL;
        assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
        char id[SHL_OPERATION_ID_MAX + 1];
        strcpy(id, shl_op_id(op));
        enum { N = 3000 };
        static const char *const tags[1] = {"line"};
        for (int i = 0; i < N; i++) {
            char msg[32];
            snprintf(msg, sizeof(msg), "line %d", i);
            assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, msg));
            if (i % 10 == 0) { /* the trail's events */
                shl_call *c = NULL;
                assert_shl_ok(shl_call_start(op, NULL, &c));
                assert_shl_ok(shl_call_end(c, NULL));
                assert_shl_ok(shl_call_release(c));
            }
        }
        /* its open drains, and dies at the point */
        shl_test_member m = {.base = base,
                             .name = "snap1",
                             .no_session = true,
                             .point = points[k],
                             .arm_before_open = true};
        shl_test_member_killed(&m, NULL, 0);
        /* the next drainer finishes the batch and the rest */
        pid_t b = fork();
        assert_true(b >= 0);
        if (b == 0) {
            shl_ledger *cl = NULL;
            CHILD_CHECK(shl_ledger_open(&cl, base, "snap2", NULL));
            CHILD_CHECK(shl__snapshotter_flush(cl, 10000));
            shl_ledger_close(cl);
            _exit(0);
        }
        assert_child_exited(b, 0);
        shl_segment_info info;
        assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
        assert_int_equal(info.events_pending, 0);
        shl_check_report rep;
        assert_int_equal(shl_reader_check(shl_ledger_reader(l), &rep), 0);
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s.operation.log", base, id);
        assert_lines_once_in_order(path, tags, 1, N);
        snprintf(path, sizeof(path), "%s/%s_trail.jsonl", base, id);
        assert_seq_exact(path, 2 * (N / 10));
        assert_shl_ok(shl_op_complete(op));
        shl_ledger_close(l);
        shl_test_cleanup(base);
    }
}

static void
test_rings_garbage_checked_and_skipped(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "rnggrb");
    shl_ledger *l = open_l(base, "cli", false, 0);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl__snapshotter_flush(l, 10000));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "before"));
    /* garble the record just posted: its size */
    struct shl__hdr *h = l->seg.hdr;
    struct shl__evring *r = NULL;
    for (uint32_t i = 0; i < h->ev_nrings; i++) {
        struct shl__evring *c = shl__ev_ring(h, i);
        if (atomic_load(&c->head) > atomic_load(&c->tail))
            r = c;
    }
    assert_non_null(r);
    uint64_t t = atomic_load(&r->tail);
    struct shl__evhdr *e =
        (struct shl__evhdr *)(shl__ev_data(r) + (t & (h->ev_ring_bytes - 1)));
    uint32_t good = e->size;
    e->size = 12345;
    shl_check_report rep;
    assert_true(shl_reader_check(shl_ledger_reader(l), &rep) > 0);
    assert_non_null(strstr(rep.text, "bad record"));
    e->size = good;
    e->kind = 99; /* a size that holds, a kind that does not */
    assert_shl_ok(shl__snapshotter_flush(l, 10000));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_skipped, 1);
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "after"));
    assert_shl_ok(shl__snapshotter_flush(l, 10000));
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, shl_op_id(op));
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "] before\n"));
    assert_non_null(strstr(text, "] after\n"));
    free(text);
    assert_int_equal(shl_reader_check(shl_ledger_reader(l), &rep), 0);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rings_per_thread),
        cmocka_unit_test(test_rings_distinct_while_alive),
        cmocka_unit_test(test_rings_full_drains_own),
        cmocka_unit_test(test_rings_full_sleeps_while_drained_elsewhere),
        cmocka_unit_test(test_rings_drainer_killed_each_step),
        cmocka_unit_test(test_rings_garbage_checked_and_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
