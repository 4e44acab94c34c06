/*
 * test_churn.c: allocate/free churn on the shared tables from several
 * processes (and, so TSan sees the protocol, several threads of one
 * process): each worker opens its own ledger on one base, joins one
 * operation and repeats register/unregister of a temp resource (mutex
 * table) and startCall/end (lock-free frame table). At the end every count
 * is back to its baseline, the claim counts are exact (every claim bumps its
 * record's generation by one, so the generations of a fresh table sum to the
 * number of claims), and the checker is clean.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_test.h"

#include "internal.h"
#include "layout.h"
#include "objects.h"
#include "shm/segment.h"
#include "shm/table.h"

#define WORKERS 4
#define CYCLES 10000

/* One worker: returns 0 or a line number of the first failure. */
static int
churn(const char *base, const char *opid, int w, int gate)
{
    if (gate >= 0) { /* start together: wait for the parent's EOF */
        char ch;
        (void)!read(gate, &ch, 1);
    }
    char pid_s[SHL_PARTICIPANT_ID_MAX + 1];
    snprintf(pid_s, sizeof(pid_s), "churn-%d", w);
    shl_ledger *l = NULL;
    if (shl_ledger_open(&l, base, pid_s, NULL) != 0)
        return __LINE__;
    shl_op *op = NULL;
    if (shl_op_join(l, opid, NULL, &op) != 0)
        return __LINE__;
    char path[700];
    for (int k = 0; k < CYCLES; k++) {
        snprintf(path, sizeof(path), "%s/churn/%d/%d", base, w, k % 7);
        int rc = shl_op_register_temp_resource(op, path);
        if (rc != 0) {
            fprintf(stderr, "worker %d cycle %d: register: %s: %s\n", w, k,
                    shl_strerror(rc), shl_errmsg());
            return __LINE__;
        }
        shl_call *c = NULL;
        rc = shl_call_start(op, NULL, &c);
        if (rc != 0) {
            fprintf(stderr, "worker %d cycle %d: start: %s: %s\n", w, k,
                    shl_strerror(rc), shl_errmsg());
            return __LINE__;
        }
        rc = shl_op_unregister_temp_resource(op, path);
        if (rc != 1) { /* exactly the one we registered */
            fprintf(stderr, "worker %d cycle %d: unregister -> %d: %s\n", w,
                    k, rc, shl_errmsg());
            return __LINE__;
        }
        if (shl_call_end(c, NULL) != 0 || shl_call_release(c) != 0)
            return __LINE__;
    }
    if (shl_op_pending_call_count(op) != 0)
        return __LINE__;
    if (shl_op_leave(op, false) != 0)
        return __LINE__;
    shl_ledger_close(l);
    return 0;
}

struct fixture {
    char base[512];
    shl_ledger *l;
    shl_op *op;
    shl_segment_info before;
    uint64_t changes_before;
    int64_t t0;
};

static void
fixture_up(struct fixture *f, const char *tag)
{
    shl_test_base(f->base, sizeof(f->base), tag);
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_participants = 16;
    o.max_operations = 8;
    o.max_frames = 256;
    o.max_resources = 64;
    o.timeout_ms = 10000 * shl_test_multiplier();
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "parent", &o));
    assert_shl_ok(shl_op_create(f->l, "churn", NULL, &f->op));
    assert_shl_ok(shl_reader_info(shl_ledger_reader(f->l), &f->before));
    struct shl__op *r = shl__op_at(&f->l->seg, f->op->lop->op_idx);
    f->changes_before = atomic_load(&r->change_count);
    f->t0 = shl_test_now_ms();
}

static uint64_t
gen_sum(const struct shl__seg *s, int t)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < s->hdr->cap[t]; i++)
        sum += atomic_load(&((struct shl__rec *)shl__rec_at(s, t, i))->gen);
    return sum;
}

static void
fixture_check_down(struct fixture *f, const char *what)
{
    int64_t ms = shl_test_now_ms() - f->t0;
    struct shl__seg *s = &f->l->seg;
    shl_reader *r = shl_ledger_reader(f->l);
    shl_segment_info after;
    assert_shl_ok(shl_reader_info(r, &after));
    print_message("%s: %d workers x %d cycles in %lld ms (%.0f cycles/s)\n",
                  what, WORKERS, CYCLES, (long long)ms,
                  ms ? WORKERS * CYCLES * 1000.0 / (double)ms : 0.0);
    /* back to the baseline, exactly */
    assert_int_equal(after.used_participants, f->before.used_participants);
    assert_int_equal(after.used_operations, f->before.used_operations);
    assert_int_equal(after.used_frames, f->before.used_frames);
    assert_int_equal(after.used_resources, f->before.used_resources);
    assert_int_equal(after.used_frames, 0);
    assert_int_equal(after.used_resources, 0);
    assert_int_equal(after.lock_recoveries, 0);
    assert_false(after.poisoned);
    assert_int_equal(s->hdr->used[SHL__T_RES], 0);
    assert_int_equal(s->hdr->used[SHL__T_PART], 1);
    /* exact claim counts: a fresh table's generations sum to its claims */
    assert_int_equal(gen_sum(s, SHL__T_FRAME), (uint64_t)WORKERS * CYCLES);
    assert_int_equal(gen_sum(s, SHL__T_RES), (uint64_t)WORKERS * CYCLES);
    assert_int_equal(gen_sum(s, SHL__T_PART), 1 + WORKERS);
    assert_int_equal(gen_sum(s, SHL__T_OP), 1);
    /* every change was counted (register, start, unregister, end) */
    struct shl__op *rec = shl__op_at(s, f->op->lop->op_idx);
    uint64_t changes = atomic_load(&rec->change_count) - f->changes_before;
    assert_true(changes >= (uint64_t)WORKERS * CYCLES * 4);
    /* nothing odd, nothing STARTING, counts and index consistent */
    assert_segment_clean(r);
    shl_snapshot *sn = NULL;
    assert_shl_ok(shl_reader_snapshot(r, shl_op_id(f->op), &sn));
    assert_int_equal(sn->frame_count, 0);
    assert_int_equal(sn->resource_count, 0);
    assert_int_equal(sn->state, SHL_OP_RUNNING);
    shl_snapshot_free(sn);
    assert_shl_ok(shl_op_complete(f->op));
    assert_segment_clean(r);
    shl_ledger_close(f->l);
    shl_test_cleanup(f->base);
}

static void
test_churn_processes(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, "churn-proc");
    char opid[SHL_OPERATION_ID_MAX + 1];
    snprintf(opid, sizeof(opid), "%s", shl_op_id(f.op));
    pid_t pids[WORKERS];
    int gate[2];
    assert_int_equal(pipe(gate), 0);
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            close(gate[1]);
            int line = churn(f.base, opid, w, gate[0]);
            if (line)
                fprintf(stderr, "worker %d failed at line %d\n", w, line);
            _exit(line ? 1 : 0);
        }
    }
    close(gate[0]);
    f.t0 = shl_test_now_ms();
    close(gate[1]); /* go */
    for (int w = 0; w < WORKERS; w++)
        assert_child_exited(pids[w], 0);
    fixture_check_down(&f, "processes");
}

struct worker_arg {
    const char *base;
    const char *opid;
    int w;
    int line;
    pthread_barrier_t *start;
};

static void *
churn_thread(void *p)
{
    struct worker_arg *a = p;
    pthread_barrier_wait(a->start);
    a->line = churn(a->base, a->opid, a->w, -1);
    return NULL;
}

static void
test_churn_threads(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, "churn-thr");
    pthread_t th[WORKERS];
    struct worker_arg args[WORKERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, WORKERS);
    for (int w = 0; w < WORKERS; w++) {
        args[w] = (struct worker_arg){f.base, shl_op_id(f.op), w, -1, &start};
        assert_int_equal(pthread_create(&th[w], NULL, churn_thread, &args[w]),
                         0);
    }
    for (int w = 0; w < WORKERS; w++) {
        pthread_join(th[w], NULL);
        if (args[w].line != 0)
            fail_msg("thread worker %d failed at line %d", w, args[w].line);
    }
    pthread_barrier_destroy(&start);
    fixture_check_down(&f, "threads");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_processes),
        cmocka_unit_test(test_churn_threads),
    };
    return cmocka_run_group_tests_name("churn", tests, NULL, NULL);
}
