/*
 * test_readers.c: readers never block and see only consistent records
 * (DESIGN §4, "Readers").
 *
 * 1. Writer processes churn call frames whose description encodes, with a
 *    checksum, the writer's participant id, the call's sequence number (the
 *    <n> of its call id) and its pid, padded with a filler derived from n.
 *    A reader takes snapshots for a few seconds and checks every frame
 *    against its call id, participant id and pid: a torn or mixed copy
 *    breaks one of them. Many snapshots prove the reader never waits.
 * 2. While another process holds the structure mutex, a reader's snapshot,
 *    list, info and check all succeed at once, and the lock-free call path
 *    keeps working (a locked mutation times out, proving the hold).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shl_test.h"

#include "internal.h"
#include "layout.h"
#include "objects.h"
#include "shm/lock.h"
#include "shm/segment.h"

#include "shl_proc.h"

/* SHL_WAIT_FOR is a statement expression: mark it for -Wpedantic builds. */
#define WAIT_FOR(cond, ms) (__extension__ SHL_WAIT_FOR(cond, ms))

#define WRITERS 2
#define PER_CYCLE 3     /* calls alive at once per writer */
#define READ_MS 3000
#define FILLER 180

static uint32_t
sum32(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* "<participant>|<n>|<pid>|<filler>|<fnv of everything before>" */
static void
make_desc(char *buf, size_t cap, const char *part, unsigned long long n,
          int pid)
{
    int k = snprintf(buf, cap, "%s|%llu|%d|", part, n, pid);
    char c = (char)('a' + n % 26);
    memset(buf + k, c, FILLER);
    k += FILLER;
    buf[k++] = '|';
    buf[k] = 0;
    snprintf(buf + k, cap - (size_t)k, "%08x", sum32(buf, (size_t)k));
}

/* Check one frame; returns NULL if consistent, else what is wrong. */
static const char *
frame_violation(const shl_call_frame *f)
{
    const char *d = f->description;
    if (!f->has_description)
        return "no description";
    const char *bar = strrchr(d, '|');
    if (!bar || strlen(bar + 1) != 8)
        return "no checksum";
    char want[9];
    snprintf(want, sizeof(want), "%08x", sum32(d, (size_t)(bar + 1 - d)));
    if (strcmp(want, bar + 1) != 0)
        return "checksum mismatch (torn description)";
    char part[SHL_PARTICIPANT_ID_MAX + 1];
    unsigned long long n;
    int pid, used = 0;
    if (sscanf(d, "%63[^|]|%llu|%d|%n", part, &n, &pid, &used) != 3)
        return "unparsable description";
    char c = (char)('a' + n % 26);
    for (int i = 0; i < FILLER; i++)
        if (d[used + i] != c)
            return "filler does not match the sequence number";
    if (strcmp(part, f->participant_id) != 0)
        return "participant id differs from the description's";
    char prefix[SHL_CALL_ID_MAX + 1];
    snprintf(prefix, sizeof(prefix), "call_%s_%llu_", part, n);
    size_t pl = strlen(prefix);
    if (strncmp(f->call_id, prefix, pl) != 0 || strlen(f->call_id) != pl + 4 ||
        strspn(f->call_id + pl, "0123456789abcdef") != 4)
        return "call id does not belong to the description";
    if (f->pid != pid)
        return "pid differs from the description's";
    if (f->state != SHL_FRAME_ACTIVE)
        return "frame not active";
    return NULL;
}

struct shared {
    _Atomic int stop;
    _Atomic uint64_t cycles[WRITERS];
};

static int
writer(const char *base, const char *opid, int w, struct shared *sh)
{
    char part[32];
    snprintf(part, sizeof(part), "writer-%d", w);
    shl_ledger *l = NULL;
    if (shl_ledger_open(&l, base, part, NULL) != 0)
        return __LINE__;
    shl_op *op = NULL;
    if (shl_op_join(l, opid, NULL, &op) != 0)
        return __LINE__;
    unsigned long long n = 0;
    char desc[SHL_DESCRIPTION_MAX + 1];
    while (!atomic_load(&sh->stop)) {
        shl_call *c[PER_CYCLE];
        for (int i = 0; i < PER_CYCLE; i++) {
            make_desc(desc, sizeof(desc), part, ++n, (int)getpid());
            shl_call_opts o;
            shl_call_opts_init(&o);
            o.description = desc;
            if (shl_call_start(op, &o, &c[i]) != 0)
                return __LINE__;
            /* our own model of the id must hold, or the test is void */
            char prefix[64];
            snprintf(prefix, sizeof(prefix), "call_%s_%llu_", part, n);
            if (strncmp(shl_call_id(c[i]), prefix, strlen(prefix)) != 0)
                return __LINE__;
        }
        for (int i = 0; i < PER_CYCLE; i++)
            if (shl_call_end(c[i], NULL) != 0 || shl_call_release(c[i]) != 0)
                return __LINE__;
        atomic_fetch_add(&sh->cycles[w], 1);
    }
    if (shl_op_leave(op, false) != 0)
        return __LINE__;
    shl_ledger_close(l);
    return 0;
}

static void
test_readers_see_consistent_frames(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "readers");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_participants = 16;
    o.max_operations = 4;
    o.max_frames = 64;
    o.max_resources = 8;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "init", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "readers", NULL, &op));
    char opid[SHL_OPERATION_ID_MAX + 1];
    snprintf(opid, sizeof(opid), "%s", shl_op_id(op));

    /* a description must fit, and our checker must accept a good frame */
    char desc[SHL_DESCRIPTION_MAX + 1];
    make_desc(desc, sizeof(desc), "writer-0", 12345678901ull, 99999);
    assert_true(strlen(desc) <= SHL_DESCRIPTION_MAX);
    shl_call_frame good;
    memset(&good, 0, sizeof(good));
    snprintf(good.participant_id, sizeof(good.participant_id), "writer-0");
    snprintf(good.call_id, sizeof(good.call_id),
             "call_writer-0_12345678901_0a9f");
    snprintf(good.description, sizeof(good.description), "%s", desc);
    good.has_description = true;
    good.pid = 99999;
    assert_null(frame_violation(&good));
    good.call_id[15] ^= 1; /* and reject a mixed one */
    assert_non_null(frame_violation(&good));

    struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            int line = writer(base, opid, w, sh);
            if (line)
                fprintf(stderr, "writer %d failed at line %d: %s\n", w, line,
                        shl_errmsg());
            _exit(line ? 1 : 0);
        }
    }

    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));
    /* wait until both writers are in */
    assert_true(WAIT_FOR(atomic_load(&sh->cycles[0]) > 0 &&
                                 atomic_load(&sh->cycles[WRITERS - 1]) > 0,
                             5000));
    uint64_t snaps = 0, frames = 0, violations = 0, lists = 0;
    int64_t worst_us = 0;
    const char *first = NULL;
    int64_t end = shl_test_now_ms() + READ_MS;
    while (shl_test_now_ms() < end) {
        int64_t t0 = shl__mono_ns();
        shl_snapshot *sn = NULL;
        int rc = shl_reader_snapshot(r, opid, &sn);
        int64_t dt = (shl__mono_ns() - t0) / 1000;
        if (dt > worst_us)
            worst_us = dt;
        if (rc != 0)
            fail_msg("snapshot %llu failed: %s: %s",
                     (unsigned long long)snaps, shl_strerror(rc),
                     shl_errmsg());
        snaps++;
        for (size_t i = 0; i < sn->frame_count; i++) {
            frames++;
            const char *v = frame_violation(&sn->frames[i]);
            /* the frame's participant is among the snapshot's */
            bool listed = false;
            for (size_t k = 0; k < sn->participant_count; k++)
                listed |= sn->participants[k].slot ==
                              sn->frames[i].participant_slot &&
                          strcmp(sn->participants[k].participant_id,
                                 sn->frames[i].participant_id) == 0;
            if (!v && !listed)
                v = "frame's participant slot not listed with that id";
            if (v) {
                violations++;
                if (!first) {
                    first = v;
                    print_error("violation: %s: frame %s by %s: \"%s\"\n", v,
                                sn->frames[i].call_id,
                                sn->frames[i].participant_id,
                                sn->frames[i].description);
                }
            }
        }
        /* a call's frame lives in one record: never listed twice (the
         * count itself may exceed what exists at any one instant, since
         * the scan is not a point in time across records) */
        for (size_t i = 0; i < sn->frame_count; i++)
            for (size_t j = i + 1; j < sn->frame_count; j++)
                if (strcmp(sn->frames[i].call_id, sn->frames[j].call_id) ==
                    0) {
                    violations++;
                    print_error("violation: call %s listed twice\n",
                                sn->frames[i].call_id);
                }
        shl_snapshot_free(sn);
        if (snaps % 64 == 0) { /* the list reads the same records */
            shl_op_summary *rows = NULL;
            size_t n = 0;
            assert_shl_ok(shl_reader_list(r, &rows, &n));
            assert_int_equal(n, 1);
            assert_string_equal(rows[0].operation_id, opid);
            free(rows);
            lists++;
        }
    }
    atomic_store(&sh->stop, 1);
    for (int w = 0; w < WRITERS; w++)
        assert_child_exited(pids[w], 0);
    uint64_t cycles = 0;
    for (int w = 0; w < WRITERS; w++)
        cycles += atomic_load(&sh->cycles[w]);
    print_message("readers: %llu snapshots (+%llu lists) in %d ms, %llu "
                  "frames checked, worst snapshot %lld us; writers: %llu "
                  "calls\n",
                  (unsigned long long)snaps, (unsigned long long)lists,
                  READ_MS, (unsigned long long)frames, (long long)worst_us,
                  (unsigned long long)(cycles * PER_CYCLE));
    assert_int_equal(violations, 0);
    assert_true(snaps > 200);  /* a blocked reader would manage few */
    assert_true(frames > 100); /* it did see the writers' frames */
    assert_true(cycles > 100);

    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_frames, 0);
    assert_segment_clean(r);
    shl_reader_close(r);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    munmap(sh, sizeof(*sh));
    shl_test_cleanup(base);
}

static void
test_readers_do_not_wait_for_the_mutex(void **state)
{
    (void)state;
    char base[512], res[600];
    shl_test_base(base, sizeof(base), "readers-held");
    snprintf(res, sizeof(res), "%s/res", base);
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_participants = 8;
    o.max_operations = 4;
    o.max_frames = 32;
    o.max_resources = 8;
    o.timeout_ms = 100; /* locked calls of this ledger give up quickly */
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "main", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "held", NULL, &op));
    assert_shl_ok(shl_op_register_temp_resource(op, res));
    shl_call *c1 = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c1));

    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        shl_ledger *cl = NULL;
        CHILD_CHECK(shl_ledger_open(&cl, base, "holder", NULL));
        CHILD_CHECK(shl__lock(&cl->seg, 2000));
        if (write(ready[1], "h", 1) != 1)
            _exit(2);
        char ch;
        (void)!read(go[0], &ch, 1); /* until the parent says go (EOF) */
        shl__unlock(&cl->seg);
        shl_ledger_close(cl);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char ch;
    assert_int_equal(read(ready[0], &ch, 1), 1);
    close(ready[0]);
    /* the mutex is held by the child */
    assert_true(__atomic_load_n(&l->seg.hdr->mutex.__data.__lock,
                                __ATOMIC_ACQUIRE) != 0);
    assert_int_equal(shl_op_register_temp_resource(op, res), -ETIMEDOUT);

    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));
    int64_t t0 = shl__mono_ns();
    for (int i = 0; i < 100; i++) {
        shl_snapshot *sn = NULL;
        assert_shl_ok(shl_reader_snapshot(r, shl_op_id(op), &sn));
        assert_int_equal(sn->frame_count, 1);
        assert_int_equal(sn->resource_count, 1);
        assert_string_equal(sn->frames[0].call_id, shl_call_id(c1));
        shl_snapshot_free(sn);
        shl_op_summary *rows = NULL;
        size_t n = 0;
        assert_shl_ok(shl_reader_list(r, &rows, &n));
        assert_int_equal(n, 1);
        free(rows);
        shl_segment_info info;
        assert_shl_ok(shl_reader_info(r, &info));
        assert_int_equal(info.used_participants, 2);
    }
    shl_check_report rep;
    if (shl_reader_check(r, &rep) != 0)
        fail_msg("checker with the mutex held by a live process:\n%s",
                 rep.text);
    int64_t dt_ms = (shl__mono_ns() - t0) / 1000000;
    print_message("100 x (snapshot + list + info) + check with the mutex "
                  "held: %lld ms\n",
                  (long long)dt_ms);
    /* one lock timeout of this ledger is 100 ms: a reader that waited on
     * the mutex even once per round would take 10 s */
    assert_true(dt_ms < 3000 * shl_test_multiplier());

    /* the call path takes no structure lock either */
    shl_call *c2 = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c2));
    assert_shl_ok(shl_call_end(c2, NULL));
    assert_shl_ok(shl_call_end(c1, NULL));

    close(go[1]); /* release the holder */
    assert_child_exited(pid, 0);
    assert_shl_ok(shl_op_register_temp_resource(op, res)); /* lock is free */
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.lock_recoveries, 0);
    assert_int_equal(info.used_resources, 2);
    assert_segment_clean(r);
    shl_reader_close(r);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_see_consistent_frames),
        cmocka_unit_test(test_readers_do_not_wait_for_the_mutex),
    };
    return cmocka_run_group_tests_name("readers", tests, NULL, NULL);
}
