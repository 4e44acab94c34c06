/*
 * test_api_ledger.c: the Ledger class through the public API (issue 3):
 * shl_ledger_open (directories, participant id validation, options and
 * their defaults, participantPid), shl_ledger_close (NULL, ending open
 * sessions) and the ledger's accessors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shl_test.h"

struct counter {
    int n;
};

static void
count_cleanup(shl_call *call, void *user)
{
    (void)call;
    ((struct counter *)user)->n++;
}

static void
test_api_ledger_open_creates_dirs_0700(void **state)
{
    (void)state;
    char base[512], nested[600], backup[700];
    shl_test_base(base, sizeof(base), "api-ledger");
    /* base does not exist yet, and neither does its parent "nested" */
    snprintf(nested, sizeof(nested), "%s/a/b", base);
    snprintf(backup, sizeof(backup), "%s/backup", nested);
    struct stat st;
    assert_int_not_equal(stat(base, &st), 0);

    mode_t old = umask(0);
    shl_ledger *l = NULL;
    int rc = shl_ledger_open(&l, nested, "cli", NULL);
    umask(old);
    assert_shl_ok(rc);
    assert_non_null(l);

    assert_int_equal(stat(nested, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(backup, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* intermediate components created by open are 0700 as well */
    char mid[600];
    snprintf(mid, sizeof(mid), "%s/a", base);
    assert_int_equal(stat(mid, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* opening again on existing directories works */
    shl_ledger *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l2, nested, "bridge", NULL));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(nested);
    shl_test_cleanup(base);
}

static void
test_api_ledger_open_base_is_a_file(void **state)
{
    (void)state;
    char base[512], file[600];
    shl_test_base(base, sizeof(base), "api-ledger");
    assert_int_equal(mkdir(base, 0700), 0);
    snprintf(file, sizeof(file), "%s/plain", base);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    shl_ledger *l = (shl_ledger *)(uintptr_t)0x1;
    assert_int_equal(shl_ledger_open(&l, file, "cli", NULL), -ENOTDIR);
    assert_ptr_equal(l, (shl_ledger *)(uintptr_t)0x1); /* not written */
    shl_test_cleanup(base);
}

static void
test_api_ledger_participant_id_validation(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-ledger");

    char max_ok[SHL_PARTICIPANT_ID_MAX + 1];
    memset(max_ok, 'p', SHL_PARTICIPANT_ID_MAX);
    max_ok[SHL_PARTICIPANT_ID_MAX] = 0;
    char too_long[SHL_PARTICIPANT_ID_MAX + 2];
    memset(too_long, 'p', SHL_PARTICIPANT_ID_MAX + 1);
    too_long[SHL_PARTICIPANT_ID_MAX + 1] = 0;

    const char *good[] = {"cli",
                          "a",
                          "TEST_123:456",
                          "test-with-dashes",
                          "test.with.dots",
                          "simple_test",
                          max_ok};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(shl_validate_participant_id(good[i]), 0);
        shl_ledger *l = NULL;
        assert_shl_ok(shl_ledger_open(&l, base, good[i], NULL));
        assert_string_equal(shl_ledger_participant_id(l), good[i]);
        shl_ledger_close(l);
    }

    const char *bad[] = {"",     "a/b",          "..",     "a..b",
                         "../x", "test<script>", "sp ace", "tab\t",
                         "ütf8", "semi;colon",   too_long};
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(shl_validate_participant_id(bad[i]), SHL_EBADID);
        shl_ledger *l = (shl_ledger *)(uintptr_t)0x1;
        assert_int_equal(shl_ledger_open(&l, base, bad[i], NULL), SHL_EBADID);
        assert_ptr_equal(l, (shl_ledger *)(uintptr_t)0x1);
        assert_true(strlen(shl_errmsg()) > 0);
    }
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_participants, 0);
    assert_segment_clean(r);
    shl_reader_close(r);
    shl_test_cleanup(base);
}

static void
test_api_ledger_opts_defaults(void **state)
{
    (void)state;
    shl_ledger_opts o;
    memset(&o, 0xa5, sizeof(o));
    shl_ledger_opts_init(&o);
    assert_int_equal(o.participant_pid, 0);
    assert_int_equal(o.max_backups, 20);
    assert_int_equal(o.heartbeat_interval_ms, 5000);
    assert_int_equal(o.stale_threshold_ms, 15000);
    assert_int_equal(o.max_participants, 1024);
    assert_int_equal(o.max_operations, 1024);
    assert_int_equal(o.max_frames, 65536);
    assert_int_equal(o.max_resources, 16384);
    assert_int_equal(o.mode, 0600);
    assert_int_equal(o.timeout_ms, 2000);
    assert_null(o.callbacks.on_backup_created);
    assert_null(o.callbacks.on_log_line);
    assert_null(o.callbacks.user);

    /* NULL options are the defaults: the segment gets the default
     * capacities and mode 0600 */
    char base[512];
    shl_test_base(base, sizeof(base), "api-ledger");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.cap_participants, 1024);
    assert_int_equal(info.cap_operations, 1024);
    assert_int_equal(info.cap_frames, 65536);
    assert_int_equal(info.cap_resources, 16384);
    assert_int_equal(info.used_participants, 1);
    assert_int_equal(info.owner_uid, (uint32_t)geteuid());
    char path[200] = "/dev/shm";
    char name[96];
    assert_true(shl_segment_name(base, name, sizeof(name)) > 0);
    assert_string_equal(name, info.shm_name);
    strncat(path, name, sizeof(path) - strlen(path) - 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    shl_ledger_close(l);
    shl_test_cleanup(base);

    /* capacities from options are used when the open creates the segment */
    shl_test_base(base, sizeof(base), "api-ledger");
    shl_ledger_opts_init(&o);
    o.max_participants = 8;
    o.max_operations = 4;
    o.max_frames = 64;
    o.max_resources = 16;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.cap_participants, 8);
    assert_int_equal(info.cap_operations, 4);
    assert_int_equal(info.cap_frames, 64);
    assert_int_equal(info.cap_resources, 16);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_api_ledger_participant_pid_recorded(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-ledger");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.participant_pid = 424242;
    shl_ledger *l = NULL, *d = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    assert_shl_ok(shl_ledger_open(&d, base, "dflt", NULL));

    shl_op *op = NULL, *dop = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_int_equal(shl_op_pid(op), 424242);
    assert_shl_ok(shl_op_join(d, shl_op_id(op), NULL, &dop));
    assert_int_equal(shl_op_pid(dop), getpid());

    shl_call *c = NULL, *dc = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_call_start(dop, NULL, &dc));
    assert_shl_ok(shl_op_register_temp_resource(op, "/tmp/api-ledger-x"));

    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(l), shl_op_id(op), &s));
    assert_int_equal(s->frame_count, 2);
    for (size_t i = 0; i < s->frame_count; i++) {
        if (strcmp(s->frames[i].call_id, shl_call_id(c)) == 0) {
            assert_string_equal(s->frames[i].participant_id, "cli");
            assert_int_equal(s->frames[i].pid, 424242);
        } else {
            assert_string_equal(s->frames[i].call_id, shl_call_id(dc));
            assert_string_equal(s->frames[i].participant_id, "dflt");
            assert_int_equal(s->frames[i].pid, getpid());
        }
    }
    assert_int_equal(s->resource_count, 1);
    assert_int_equal(s->resources[0].owner, 424242);
    /* the participant table keeps both: the real pid proves liveness */
    bool seen = false;
    for (size_t i = 0; i < s->participant_count; i++)
        if (strcmp(s->participants[i].participant_id, "cli") == 0) {
            seen = true;
            assert_int_equal(s->participants[i].recorded_pid, 424242);
            assert_int_equal(s->participants[i].pid, getpid());
            assert_true(s->participants[i].alive);
        }
    assert_true(seen);
    shl_snapshot_free(s);

    assert_shl_ok(shl_call_end(dc, NULL));
    assert_shl_ok(shl_op_leave(dop, false));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(d);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_api_ledger_close_null_is_harmless(void **state)
{
    (void)state;
    shl_ledger_close(NULL);
    shl_ledger_close(NULL);
    assert_null(shl_ledger_participant_id(NULL));
    assert_null(shl_ledger_base_path(NULL));
    assert_null(shl_ledger_reader(NULL));
}

static void
test_api_ledger_close_ends_open_sessions(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-ledger");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));

    struct counter cl1 = {0}, cl2 = {0};
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.callbacks.on_cleanup = count_cleanup;

    shl_op *op = NULL, *j1 = NULL, *j2 = NULL;
    assert_shl_ok(shl_op_create(l, "close-test", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    co.callbacks.user = &cl1;
    shl_call *c1 = NULL, *c2 = NULL;
    assert_shl_ok(shl_call_start(op, &co, &c1));
    assert_shl_ok(shl_call_start(op, &co, &c2));
    /* two sessions of the second ledger, each with pending calls */
    assert_shl_ok(shl_op_join(l2, id, NULL, &j1));
    assert_shl_ok(shl_op_join(l2, id, NULL, &j2));
    co.callbacks.user = &cl2;
    shl_call *b1 = NULL, *b2 = NULL, *b3 = NULL;
    assert_shl_ok(shl_call_start(j1, &co, &b1));
    assert_shl_ok(shl_call_start(j2, &co, &b2));
    assert_shl_ok(shl_call_start(j2, &co, &b3));

    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(r, id, &s));
    assert_int_equal(s->frame_count, 5);
    assert_int_equal(s->participant_count, 2);
    shl_snapshot_free(s);

    /* closing the joiner ends both its sessions: its frames go, its calls'
     * cleanups run, the operation does not fail */
    shl_ledger_close(l2);
    assert_int_equal(cl2.n, 3);
    assert_int_equal(cl1.n, 0);
    assert_shl_ok(shl_reader_snapshot(r, id, &s));
    assert_int_equal(s->frame_count, 2);
    for (size_t i = 0; i < s->frame_count; i++)
        assert_string_equal(s->frames[i].participant_id, "cli");
    assert_int_equal(s->state, SHL_OP_RUNNING);
    assert_int_equal(s->participant_count, 1);
    shl_snapshot_free(s);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_participants, 1);
    assert_segment_clean(r);

    /* closing the initiator without complete ends its session too */
    shl_ledger_close(l);
    assert_int_equal(cl1.n, 2);
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_participants, 0);
    assert_int_equal(info.used_frames, 0);
    assert_segment_clean(r);
    /* as dispose() in the original, close does not complete the
     * operation: the record stays (running, no frames, no members) until
     * someone reclaims it */
    assert_shl_ok(shl_reader_snapshot(r, id, &s));
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->participant_count, 0);
    assert_int_equal(s->state, SHL_OP_RUNNING);
    shl_snapshot_free(s);
    shl_reader_close(r);
    shl_test_cleanup(base);
}

static void
test_api_ledger_accessors(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-ledger");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "vscode", NULL));
    assert_string_equal(shl_ledger_participant_id(l), "vscode");
    assert_string_equal(shl_ledger_base_path(l), base);
    shl_reader *r = shl_ledger_reader(l);
    assert_non_null(r);
    assert_ptr_equal(shl_ledger_reader(l), r);
    assert_shl_ok(shl_ledger_heartbeat(l));

    /* the base path is returned as given, not resolved */
    char rel[600];
    snprintf(rel, sizeof(rel), "%s/./sub/../", base);
    shl_ledger *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l2, rel, "other", NULL));
    assert_string_equal(shl_ledger_base_path(l2), rel);
    /* ... but it names the same segment */
    shl_segment_info a, b;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &a));
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l2), &b));
    assert_string_equal(a.shm_name, b.shm_name);
    assert_int_equal(b.used_participants, 2);
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}


/* shl_reader_participants lists every slot in use, with the kernel's word on
 * liveness; shl_reader_info names the snapshotter holder. */
static void
test_api_ledger_participants_and_snapshotter(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "parts");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    shl_ledger *holder = NULL, *quiet = NULL;
    assert_shl_ok(shl_ledger_open(&holder, base, "holder", &o));
    o.snapshotter = false;
    assert_shl_ok(shl_ledger_open(&quiet, base, "quiet", &o));
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));

    /* the holder's thread takes the role at its first pass */
    shl_segment_info info;
    assert_true(SHL_WAIT_FOR(shl_reader_info(r, &info) == 0 &&
                                 info.snapshotter_slot != UINT32_MAX,
                             5000));
    assert_true(info.snapshotter_held);
    assert_string_equal(info.snapshotter_id, "holder");
    assert_int_equal(info.snapshotter_pid, getpid());
    /* the ledger's own reader sees the same (its lock is its own) */
    shl_segment_info own;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(holder), &own));
    assert_true(own.snapshotter_held);
    assert_string_equal(own.snapshotter_id, "holder");

    shl_participant_info *rows = NULL;
    size_t n = 0;
    assert_shl_ok(shl_reader_participants(r, &rows, &n));
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].participant_id, "holder");
    assert_string_equal(rows[1].participant_id, "quiet");
    for (size_t i = 0; i < n; i++) {
        assert_true(rows[i].alive);
        assert_int_equal(rows[i].pid, getpid());
        assert_true(i == 0 || rows[i].slot > rows[i - 1].slot);
    }
    free(rows);

    /* the holder leaves: its slot goes, and so does the role */
    shl_ledger_close(holder);
    assert_shl_ok(shl_reader_participants(r, &rows, &n));
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].participant_id, "quiet");
    free(rows);
    assert_shl_ok(shl_reader_info(r, &info));
    assert_false(info.snapshotter_held);
    assert_int_equal(info.snapshotter_slot, UINT32_MAX);
    assert_string_equal(info.snapshotter_id, "");

    /* bad arguments */
    assert_int_equal(shl_reader_participants(NULL, &rows, &n), -EINVAL);
    assert_int_equal(shl_reader_participants(r, NULL, &n), -EINVAL);
    assert_int_equal(shl_reader_participants(r, &rows, NULL), -EINVAL);

    shl_reader_close(r);
    shl_ledger_close(quiet);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_ledger_open_creates_dirs_0700),
        cmocka_unit_test(test_api_ledger_open_base_is_a_file),
        cmocka_unit_test(test_api_ledger_participant_id_validation),
        cmocka_unit_test(test_api_ledger_opts_defaults),
        cmocka_unit_test(test_api_ledger_participant_pid_recorded),
        cmocka_unit_test(test_api_ledger_close_null_is_harmless),
        cmocka_unit_test(test_api_ledger_close_ends_open_sessions),
        cmocka_unit_test(test_api_ledger_accessors),
        cmocka_unit_test(test_api_ledger_participants_and_snapshotter),
    };
    return cmocka_run_group_tests_name("api_ledger", tests, NULL, NULL);
}
