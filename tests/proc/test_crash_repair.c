/*
 * test_crash_repair.c: a process SIGKILLed at every crash point under the
 * structure mutex, and the repair done by the next locker (lock.c).
 *
 * The table of scenarios names, for each mutation, the crash points it
 * passes. The test walks shl__crash_points[]: every point is run under every
 * scenario that passes it, and a point that no scenario passes (a new one)
 * fails the test by name. For each case a forked child sets up unarmed, arms
 * the point, performs the mutation and must die by SIGKILL there. The parent
 * then takes the lock once (the repair runs), and asserts: one more lock
 * recovery, a clean checker, and the interrupted record exactly once or not
 * at all (unpublished claims roll back, started frees roll forward, a
 * started failure rolls forward).
 *
 * Last, a garbled intent poisons the segment: SHL_EPANIC for the next locker
 * and every later one, and the checker reports it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_test.h"

#include "internal.h"
#include "layout.h"
#include "objects.h"
#include "shm/index.h"
#include "shm/lock.h"
#include "shm/segment.h"
#include "shm/table.h"


/* Points exercised by other tests (the creator's, in test_segment.c). */
static const char *const covered_elsewhere[] = {"init.truncated",
                                                "init.filled"};

struct ctx {
    char base[512];
    char res[600]; /* <base>/res: a temp resource path of the test's own */
    const char *point;
    int info_fd;    /* child -> parent: context (ids) */
    shl_ledger *lp; /* parent (no sessions) */
};

/* ---- child side ---- */

static shl_ledger *
child_ledger(struct ctx *c)
{
    shl_ledger *l = NULL;
    CHILD_CHECK(shl_ledger_open(&l, c->base, "child", NULL));
    return l;
}

static void
child_tell(struct ctx *c, const char *s)
{
    size_t n = strlen(s);
    if (write(c->info_fd, s, n) != (ssize_t)n)
        _exit(2);
}

static void
arm(struct ctx *c)
{
    shl__crash_arm(c->point, SHL__CRASH_SIGKILL);
}

static void
ch_op_create(struct ctx *c)
{
    shl_ledger *l = child_ledger(c);
    shl_op *op = NULL;
    arm(c);
    (void)!shl_op_create(l, "doomed", NULL, &op);
}

/* The child's own operation, its id told to the parent. */
static shl_op *
child_op(struct ctx *c, shl_ledger *l)
{
    shl_op *op = NULL;
    CHILD_CHECK(shl_op_create(l, "child's", NULL, &op));
    child_tell(c, shl_op_id(op));
    return op;
}

static void
ch_res_register(struct ctx *c)
{
    shl_ledger *l = child_ledger(c);
    shl_op *op = child_op(c, l);
    arm(c);
    (void)shl_op_register_temp_resource(op, c->res);
}

static void
ch_res_unregister(struct ctx *c)
{
    shl_ledger *l = child_ledger(c);
    shl_op *op = child_op(c, l);
    CHILD_CHECK(shl_op_register_temp_resource(op, c->res));
    arm(c);
    (void)shl_op_unregister_temp_resource(op, c->res);
}

static void
ch_op_complete(struct ctx *c)
{
    shl_ledger *l = child_ledger(c);
    shl_op *op = child_op(c, l);
    arm(c);
    (void)shl_op_complete(op);
}

static void
ch_call_fail(struct ctx *c)
{
    shl_ledger *l = child_ledger(c);
    shl_op *op = child_op(c, l);
    shl_call *call = NULL;
    CHILD_CHECK(shl_call_start(op, NULL, &call)); /* fail_on_crash */
    child_tell(c, " ");
    child_tell(c, shl_call_id(call));
    arm(c);
    (void)shl_call_fail(call, "boom");
}

static void
ch_part_open(struct ctx *c)
{
    arm(c);
    shl_ledger *l = NULL;
    (void)!shl_ledger_open(&l, c->base, "child", NULL);
}

static void
ch_part_close(struct ctx *c)
{
    shl_ledger *l = child_ledger(c);
    arm(c);
    shl_ledger_close(l);
}

/* ---- parent side: what must be true after the repair ----
 *
 * The parent verifies without sessions of its own (reader API and record
 * inspection only), so nothing but the repair acts on the dead child's
 * records between its death and the assertions. */

static bool
point_is(const char *point, const char *name)
{
    return strcmp(point, name) == 0;
}

/* A claim interrupted after publication is kept (roll forward); before it,
 * undone. */
static bool
claim_survives(const char *point)
{
    return point_is(point, "alloc.published") ||
           point_is(point, "alloc.indexed");
}

/* A free interrupted anywhere after its intent is finished. */
static bool
free_finished(const char *point)
{
    return strncmp(point, "free.", 5) == 0;
}

/* Rows of the operation list whose initiator is the (dead) child. */
static int
child_ops(struct ctx *c, char *id_out, size_t cap, shl_op_state *st)
{
    shl_op_summary *rows = NULL;
    size_t n = 0;
    assert_shl_ok(shl_reader_list(shl_ledger_reader(c->lp), &rows, &n));
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].initiator_id, "child") == 0) {
            found++;
            if (id_out)
                snprintf(id_out, cap, "%s", rows[i].operation_id);
            if (st)
                *st = rows[i].state;
        }
    free(rows);
    return found;
}

/* The operation is whole: allocated, indexed under its id with the live
 * generation, its sequence even, and a snapshot of it works. */
static shl_snapshot *
assert_op_whole(struct ctx *c, const char *id)
{
    struct shl__seg *s = &c->lp->seg;
    uint32_t idx;
    uint64_t gen;
    assert_shl_ok(shl__index_lookup(s, id, &idx, &gen));
    struct shl__op *r = shl__op_at(s, idx);
    assert_int_equal(atomic_load(&r->h.state), SHL__R_ALLOCATED);
    assert_int_equal(atomic_load(&r->h.gen), gen);
    assert_int_equal(atomic_load(&r->h.seq) & 1u, 0);
    assert_string_equal(r->id, id);
    shl_snapshot *sn = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(c->lp), id, &sn));
    assert_string_equal(sn->operation_id, id);
    assert_string_equal(sn->initiator_id, "child");
    return sn;
}

/* Resource records with this path, in any operation. */
static int
res_records(struct ctx *c, const char *path)
{
    struct shl__seg *s = &c->lp->seg;
    int n = 0;
    for (uint32_t i = 0; i < s->hdr->cap[SHL__T_RES]; i++) {
        struct shl__res *x = shl__res_at(s, i);
        if (atomic_load(&x->h.state) == SHL__R_ALLOCATED &&
            strcmp(x->path, path) == 0)
            n++;
    }
    return n;
}

/* Participant records named "child" that are allocated. */
static int
child_parts(struct ctx *c, bool *alive)
{
    struct shl__seg *s = &c->lp->seg;
    int n = 0;
    for (uint32_t i = 0; i < s->hdr->cap[SHL__T_PART]; i++) {
        struct shl__part *p = shl__part_at(s, i);
        if (atomic_load(&p->h.state) == SHL__R_ALLOCATED &&
            strcmp(p->id, "child") == 0) {
            n++;
            if (alive)
                *alive = shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + i);
        }
    }
    return n;
}

static void
v_op_create(struct ctx *c, const char *info)
{
    (void)info;
    char id[SHL_OPERATION_ID_MAX + 1];
    shl_op_state st;
    int n = child_ops(c, id, sizeof(id), &st);
    assert_int_equal(n, claim_survives(c->point) ? 1 : 0);
    if (n) {
        assert_int_equal(st, SHL_OP_RUNNING);
        shl_snapshot *sn = assert_op_whole(c, id);
        assert_int_equal(sn->state, SHL_OP_RUNNING);
        assert_string_equal(sn->description, "doomed");
        shl_snapshot_free(sn);
    }
}

static void
v_res_register(struct ctx *c, const char *id)
{
    shl_snapshot *sn = assert_op_whole(c, id);
    size_t n = sn->resource_count;
    if (n)
        assert_string_equal(sn->resources[0].path, c->res);
    shl_snapshot_free(sn);
    assert_int_equal(n, claim_survives(c->point) ? 1 : 0);
    assert_int_equal(res_records(c, c->res), (int)n); /* never twice */
}

static void
v_res_unregister(struct ctx *c, const char *id)
{
    shl_snapshot *sn = assert_op_whole(c, id);
    size_t n = sn->resource_count;
    shl_snapshot_free(sn);
    assert_int_equal(n, free_finished(c->point) ? 0 : 1);
    assert_int_equal(res_records(c, c->res), (int)n);
}

/* An interrupted complete: the operation fully gone (with its resources),
 * or still running, whole, with its resources. (A complete interrupted while
 * freeing the operation's resources is tests/stress/test_found_complete_crash.c,
 * which fails until complete is made crash-atomic; move it here then.) */
static void
v_op_complete(struct ctx *c, const char *id, int resources)
{
    assert_true(shl_validate_operation_id(id) == 0);
    shl_op_state st = SHL_OP_RUNNING;
    int n = child_ops(c, NULL, 0, &st);
    if (n == 0) {
        uint32_t idx;
        uint64_t gen;
        assert_int_equal(shl__index_lookup(&c->lp->seg, id, &idx, &gen),
                         SHL_ENOTFOUND);
        assert_int_equal(res_records(c, c->res), 0);
        return;
    }
    assert_int_equal(n, 1);
    if (st != SHL_OP_RUNNING)
        fail_msg("crash at %s inside complete left operation %s %s: neither "
                 "gone nor running",
                 c->point, id, shl_op_state_name(st));
    shl_snapshot *sn = assert_op_whole(c, id);
    assert_int_equal(sn->state, SHL_OP_RUNNING);
    assert_int_equal(sn->resource_count, (size_t)resources);
    shl_snapshot_free(sn);
    assert_int_equal(res_records(c, c->res), resources);
}

static void
v_op_complete_plain(struct ctx *c, const char *id)
{
    v_op_complete(c, id, 0);
    /* no resources: the first lock of complete is lock.acquired, every
     * free.* point is in the final free of the operation record */
    assert_int_equal(child_ops(c, NULL, 0, NULL),
                     point_is(c->point, "lock.acquired") ? 1 : 0);
}

static void
v_call_fail(struct ctx *c, const char *info)
{
    char id[SHL_OPERATION_ID_MAX + 1];
    const char *sp = strchr(info, ' ');
    assert_non_null(sp);
    snprintf(id, sizeof(id), "%.*s", (int)(sp - info), info);
    const char *call_id = sp + 1;
    shl_snapshot *sn = assert_op_whole(c, id);
    /* the call's frame was removed before the failure was recorded */
    assert_int_equal(sn->frame_count, 0);
    if (point_is(c->point, "lock.acquired")) {
        assert_int_equal(sn->state, SHL_OP_RUNNING);
    } else {
        /* the failure is rolled forward */
        assert_int_equal(sn->state, SHL_OP_FAILED);
        assert_true(sn->failure.failed_at_us > 0); /* a real time */
        assert_true(sn->failure.crashed_call_count <= 1);
        if (sn->failure.crashed_call_count)
            assert_string_equal(sn->failure.crashed_call_ids[0], call_id);
        print_message("  %s: failure after repair: failed_at=%lld "
                      "reason=\"%s\" crashed=%u\n",
                      c->point, (long long)sn->failure.failed_at_us,
                      sn->failure.reason, sn->failure.crashed_call_count);
    }
    shl_snapshot_free(sn);
}

static void
v_part_open(struct ctx *c, const char *info)
{
    (void)info;
    bool alive = true;
    int n = child_parts(c, &alive);
    assert_int_equal(n, claim_survives(c->point) ? 1 : 0);
    if (n)
        assert_false(alive); /* its liveness lock died with it */
}

static void
v_part_close(struct ctx *c, const char *info)
{
    (void)info;
    bool alive = true;
    int n = child_parts(c, &alive);
    assert_int_equal(n, free_finished(c->point) ? 0 : 1);
    if (n)
        assert_false(alive);
}

/* ---- the table ---- */

#define ALLOC_POINTS                                                           \
    "lock.acquired", "alloc.intent", "alloc.claimed", "alloc.filled",          \
        "alloc.published"

static const char *const pts_op_create[] = {ALLOC_POINTS, "alloc.indexed",
                                            NULL};
static const char *const pts_alloc[] = {ALLOC_POINTS, NULL};
static const char *const pts_free[] = {"lock.acquired", "free.intent",
                                       "free.released", NULL};
static const char *const pts_op_free[] = {"lock.acquired", "free.intent",
                                          "free.unindexed", "free.released",
                                          NULL};
static const char *const pts_fail[] = {"lock.acquired", "fail.intent",
                                       "fail.half", NULL};

static const struct scenario {
    const char *name;
    const char *const *points; /* the crash points this mutation passes */
    void (*child)(struct ctx *c);
    void (*verify)(struct ctx *c, const char *info);
} scenarios[] = {
    {"operation create", pts_op_create, ch_op_create, v_op_create},
    {"resource register", pts_alloc, ch_res_register, v_res_register},
    {"resource unregister", pts_free, ch_res_unregister, v_res_unregister},
    {"operation complete", pts_op_free, ch_op_complete, v_op_complete_plain},
    {"call fail (fail_on_crash)", pts_fail, ch_call_fail, v_call_fail},
    {"participant open", pts_alloc, ch_part_open, v_part_open},
    {"participant close", pts_free, ch_part_close, v_part_close},
};

static bool
passes(const struct scenario *sc, const char *point)
{
    for (const char *const *p = sc->points; *p; p++)
        if (strcmp(*p, point) == 0)
            return true;
    return false;
}

static void
small_opts(shl_ledger_opts *o)
{
    shl_ledger_opts_init(o);
    o->max_participants = 8;
    o->max_operations = 8;
    o->max_frames = 32;
    o->max_resources = 16;
}

/* The next locker: take and drop the structure mutex. (Deliberately not a
 * public call: shl_ledger_open() also reaps dead participants, and the
 * reaper's work is not what this test checks.) */
static void
probe_lock(struct shl__seg *s)
{
    assert_shl_ok(shl__lock(s, 2000));
    shl__unlock(s);
}

static char cur_base[512]; /* for the teardown when a case fails */

static void
run_case(const char *point, const struct scenario *sc)
{
    struct ctx c;
    memset(&c, 0, sizeof(c));
    c.point = point;
    shl_test_base(c.base, sizeof(c.base), "crash");
    snprintf(c.res, sizeof(c.res), "%s/res", c.base);
    snprintf(cur_base, sizeof(cur_base), "%s", c.base);
    shl_ledger_opts o;
    small_opts(&o);
    /* the parent takes part in no operation (no monitor thread) and opens
     * nothing after the crash (no reaping): only the repair acts */
    assert_shl_ok(shl_ledger_open(&c.lp, c.base, "parent", &o));
    shl_reader *r = shl_ledger_reader(c.lp);
    shl_segment_info before, after;
    assert_shl_ok(shl_reader_info(r, &before));

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        c.info_fd = pfd[1];
        sc->child(&c);
        _exit(0); /* the point was not reached */
    }
    close(pfd[1]);
    char info[512] = "";
    size_t got = 0;
    ssize_t k;
    while (got < sizeof(info) - 1 &&
           (k = read(pfd[0], info + got, sizeof(info) - 1 - got)) > 0)
        got += (size_t)k;
    info[got] = 0;
    close(pfd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("%s at %s: child was not killed at the point (status 0x%x)",
                 sc->name, point, status);
    /* it died holding the structure mutex */
    assert_true(__atomic_load_n(&c.lp->seg.hdr->mutex.__data.__lock,
                                __ATOMIC_ACQUIRE) != 0);

    /* the next locker repairs */
    probe_lock(&c.lp->seg);
    assert_shl_ok(shl_reader_info(r, &after));
    if (after.lock_recoveries != before.lock_recoveries + 1)
        fail_msg("%s at %s: %llu lock recoveries, want %llu", sc->name, point,
                 (unsigned long long)after.lock_recoveries,
                 (unsigned long long)before.lock_recoveries + 1);
    assert_false(after.poisoned);
    assert_int_equal(atomic_load(&c.lp->seg.hdr->intent.kind), SHL__I_NONE);
    shl_check_report rep;
    if (shl_reader_check(r, &rep) != 0)
        fail_msg("%s at %s: checker after repair:\n%s", sc->name, point,
                 rep.text);

    sc->verify(&c, info);

    /* and the segment keeps working, cleanly */
    probe_lock(&c.lp->seg);
    assert_shl_ok(shl_reader_info(r, &after));
    assert_int_equal(after.lock_recoveries, before.lock_recoveries + 1);
    if (shl_reader_check(r, &rep) != 0)
        fail_msg("%s at %s: checker after verification:\n%s", sc->name,
                 point, rep.text);
    shl_ledger_close(c.lp);
    shl_test_cleanup(c.base);
    cur_base[0] = 0;
}

static int
teardown_case(void **state)
{
    (void)state;
    if (cur_base[0])
        shl_test_cleanup(cur_base);
    cur_base[0] = 0;
    return 0;
}

static void
test_crash_repair_every_point(void **state)
{
    (void)state;
    int cases = 0;
    for (const char *const *pp = shl__crash_points; *pp; pp++) {
        const char *point = *pp;
        bool elsewhere = false;
        for (size_t i = 0; i < SHL__ARRAY_LEN(covered_elsewhere); i++)
            elsewhere |= strcmp(point, covered_elsewhere[i]) == 0;
        if (elsewhere)
            continue;
        int n = 0;
        for (size_t i = 0; i < SHL__ARRAY_LEN(scenarios); i++) {
            if (!passes(&scenarios[i], point))
                continue;
            print_message("crash at %-16s during %s\n", point,
                          scenarios[i].name);
            run_case(point, &scenarios[i]);
            n++;
        }
        if (n == 0)
            fail_msg("crash point \"%s\" is passed by no scenario of "
                     "test_crash_repair.c: add the mutation that passes it",
                     point);
        cases += n;
    }
    print_message("%d crash cases\n", cases);
    /* and the table names no point that does not exist (a renamed one) */
    for (size_t i = 0; i < SHL__ARRAY_LEN(scenarios); i++)
        for (const char *const *p = scenarios[i].points; *p; p++) {
            bool known = false;
            for (const char *const *pp = shl__crash_points; *pp; pp++)
                known |= strcmp(*pp, *p) == 0;
            if (!known)
                fail_msg("scenario \"%s\" names crash point \"%s\", which "
                         "the library does not have",
                         scenarios[i].name, *p);
        }
    assert_true(cases > (int)SHL__ARRAY_LEN(scenarios));
}

/* ---- a garbled intent poisons the segment ---- */

static const struct {
    const char *name;
    uint32_t kind, table, index_over_cap;
} garbles[] = {
    {"alloc index beyond capacity", SHL__I_ALLOC, SHL__T_OP, 5},
    {"free on table out of range", SHL__I_FREE, SHL__NTABLES + 3, 0},
    {"unknown kind", 77, SHL__T_RES, 0},
    {"fail on a non-operation table", SHL__I_FAIL, SHL__T_RES, 0},
    {"crash on a non-operation table", SHL__I_CRASH, SHL__T_FRAME, 0},
};

static void
test_crash_repair_garbled_intent_poisons(void **state)
{
    (void)state;
    for (size_t g = 0; g < SHL__ARRAY_LEN(garbles); g++) {
        char base[512];
        shl_test_base(base, sizeof(base), "crash-garble");
        shl_ledger_opts o;
        small_opts(&o);
        shl_ledger *l = NULL;
        assert_shl_ok(shl_ledger_open(&l, base, "parent", &o));
        shl_op *op = NULL;
        assert_shl_ok(shl_op_create(l, "P", NULL, &op));
        shl_call *call = NULL;
        assert_shl_ok(shl_call_start(op, NULL, &call));
        shl_reader *r = shl_ledger_reader(l);
        shl_segment_info info;
        assert_shl_ok(shl_reader_info(r, &info));
        uint64_t recoveries = info.lock_recoveries;

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            shl_ledger *cl = NULL;
            CHILD_CHECK(shl_ledger_open(&cl, base, "child", NULL));
            struct shl__seg *s = &cl->seg;
            CHILD_CHECK(shl__lock(s, 2000));
            struct shl__intent *in = &s->hdr->intent;
            in->table = garbles[g].table;
            in->index = (garbles[g].table < SHL__NTABLES
                             ? s->hdr->cap[garbles[g].table]
                             : 0) +
                        garbles[g].index_over_cap;
            in->gen = 1;
            atomic_store(&in->kind, garbles[g].kind);
            kill(getpid(), SIGKILL);
            _exit(3);
        }
        assert_child_signaled(pid, SIGKILL);

        shl_op *x = NULL;
        int rc = shl_op_create(l, NULL, NULL, &x);
        if (rc != SHL_EPANIC)
            fail_msg("%s: next locker got %d (%s), want SHL_EPANIC",
                     garbles[g].name, rc, shl_strerror(rc));
        assert_true(strstr(shl_errmsg(), "poison") != NULL);
        /* and every later locker */
        assert_int_equal(shl_op_create(l, NULL, NULL, &x), SHL_EPANIC);
        assert_int_equal(shl_op_register_temp_resource(op, "/tmp/x"),
                         SHL_EPANIC);
        shl_ledger *l2 = NULL;
        assert_int_equal(shl_ledger_open(&l2, base, "late", &o), SHL_EPANIC);
        assert_null(l2);
        /* the poisoned segment is reported */
        assert_shl_ok(shl_reader_info(r, &info));
        assert_true(info.poisoned);
        assert_int_equal(info.lock_recoveries, recoveries);
        shl_reader *r2 = NULL;
        assert_shl_ok(shl_reader_open(&r2, base));
        shl_check_report rep;
        assert_true(shl_reader_check(r2, &rep) > 0);
        assert_true(strstr(rep.text, "poisoned") != NULL);
        /* readers still never block: a snapshot still works */
        shl_snapshot *sn = NULL;
        assert_shl_ok(shl_reader_snapshot(r2, shl_op_id(op), &sn));
        assert_int_equal(sn->frame_count, 1);
        shl_snapshot_free(sn);
        shl_reader_close(r2);

        assert_shl_ok(shl_call_end(call, NULL)); /* lock-free: still fine */
        assert_int_equal(shl_op_complete(op), SHL_EPANIC);
        shl_ledger_close(l); /* ends the session; cannot lock; no hang */
        shl_test_cleanup(base);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_crash_repair_every_point,
                                  teardown_case),
        cmocka_unit_test(test_crash_repair_garbled_intent_poisons),
    };
    return cmocka_run_group_tests_name("crash_repair", tests, NULL, NULL);
}
