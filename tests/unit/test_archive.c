/* test_archive.c: backup/{opId}/ on complete and on failure, the trail,
 * rotation by folder count (made real: the original's test counted files),
 * symlinks never followed, write errors reported. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/events.h"
#include "files/snapshotter.h"
#include "files/json.h"
#include "shl_test.h"

#include "shl_text.h"

/* Callbacks run on the snapshotter thread as well as the test's own (the
 * header's Context for on_log_line and on_backup_created): atomic counts,
 * the path under a lock. */
struct cbs {
    _Atomic int backups;
    char last_backup[1024];
    _Atomic int errors;
};
static pthread_mutex_t cbs_mu = PTHREAD_MUTEX_INITIALIZER;

static void
on_backup(const char *path, void *user)
{
    struct cbs *c = user;
    /* archive folders only: new trail files are reported too */
    if (strstr(path, "_trail.jsonl"))
        return;
    c->backups++;
    pthread_mutex_lock(&cbs_mu);
    snprintf(c->last_backup, sizeof(c->last_backup), "%s", path);
    pthread_mutex_unlock(&cbs_mu);
}

static void
on_line(const char *line, void *user)
{
    struct cbs *c = user;
    if (strstr(line, "[Ledger]") && strstr(line, "failed"))
        c->errors++;
}

static shl_ledger *
open_ledger(const char *base, const char *pid, struct cbs *c,
            uint32_t max_backups)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.callbacks.on_backup_created = on_backup;
    o.callbacks.on_log_line = on_line;
    o.callbacks.user = c;
    if (max_backups)
        o.max_backups = max_backups;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, pid, &o));
    return l;
}

/* Does a/b (b may start with '/') exist? */
static bool
exists(const char *a, const char *b)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s%s", a, b);
    struct stat st;
    return lstat(path, &st) == 0;
}

static void
test_archive_complete(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "arch");
    struct cbs c = {0};
    shl_ledger *l = open_ledger(base, "cli", &c, 0);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "archive me", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    shl_call *done = NULL, *open_call = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &done));
    assert_shl_ok(shl_call_end(done, NULL));
    char done_id[SHL_CALL_ID_MAX + 1]; /* the handle dies with complete() */
    strcpy(done_id, shl_call_id(done));
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = "still running";
    assert_shl_ok(shl_call_start(op, &co, &open_call));
    char call_id[SHL_CALL_ID_MAX + 1];
    strcpy(call_id, shl_call_id(open_call));
    assert_shl_ok(shl_op_register_temp_resource(op, "/tmp/arch-res"));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "before complete"));
    assert_shl_ok(shl_op_debug_log(op, "debug before complete"));
    assert_shl_ok(shl_op_complete(op));

    /* when complete returns, the folder is there and the callback fired */
    assert_int_equal(c.backups, 1);
    char folder[1024];
    snprintf(folder, sizeof(folder), "%s/backup/%s", base, id);
    char seen[sizeof(c.last_backup)];
    pthread_mutex_lock(&cbs_mu);
    memcpy(seen, c.last_backup, sizeof(seen));
    pthread_mutex_unlock(&cbs_mu);
    assert_string_equal(seen, folder);
    assert_int_equal(c.errors, 0);

    char path[1200];
    snprintf(path, sizeof(path), "%s/operation.json", folder);
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_snapshot_from_json(text, &s));
    assert_string_equal(s->operation_id, id);
    assert_int_equal(s->state, SHL_OP_COMPLETED);
    assert_string_equal(s->initiator_id, "cli");
    assert_string_equal(s->description, "archive me");
    assert_int_equal(s->frame_count, 1); /* as it was at complete() */
    assert_string_equal(s->frames[0].call_id, call_id);
    assert_string_equal(s->frames[0].description, "still running");
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/arch-res");
    shl_snapshot_free(s);
    assert_non_null(strstr(text, "\"operationState\": \"completed\""));
    free(text);

    /* the logs moved, OPERATION_COMPLETED is the last line */
    snprintf(path, sizeof(path), "%s/operation.log", folder);
    text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "[INFO] before complete\n"));
    assert_non_null(strstr(text, "CALL_STARTED callId="));
    size_t len = strlen(text);
    const char *last = "[INFO] OPERATION_COMPLETED\n";
    assert_true(len > strlen(last));
    assert_string_equal(text + len - strlen(last), last);
    free(text);
    snprintf(path, sizeof(path), "%s/operation.debug.log", folder);
    text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, " debug before complete\n"));
    free(text);

    /* the trail: one JSON event per line, in order */
    snprintf(path, sizeof(path), "%s/trail.jsonl", folder);
    text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    int started = -1, ended = -1, completed = -1, n = 0;
    for (char *p = text; *p; n++) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = 0;
        json_error_t err;
        json_t *ev = json_loads(p, 0, &err);
        if (!ev)
            fail_msg("trail line %d is not JSON: %s: %s", n, err.text, p);
        const char *name = json_string_value(json_object_get(ev, "event"));
        const char *cid = json_string_value(json_object_get(ev, "callId"));
        assert_non_null(name);
        assert_non_null(json_object_get(ev, "ts"));
        if (!strcmp(name, "CALL_STARTED") && cid &&
            !strcmp(cid, done_id))
            started = n;
        if (!strcmp(name, "CALL_ENDED") && cid &&
            !strcmp(cid, done_id)) {
            ended = n;
            assert_true(json_is_integer(json_object_get(ev, "durationMs")));
        }
        if (!strcmp(name, "OPERATION_COMPLETED"))
            completed = n;
        json_decref(ev);
        p = nl + 1;
    }
    free(text);
    assert_true(started >= 0 && started < ended && ended < completed);

    /* nothing of the operation is left in basePath */
    char rel[400];
    snprintf(rel, sizeof(rel), "/%s.operation.log", id);
    assert_false(exists(base, rel));
    snprintf(rel, sizeof(rel), "/%s.operation.debug.log", id);
    assert_false(exists(base, rel));
    snprintf(rel, sizeof(rel), "/%s.operation.json", id);
    assert_false(exists(base, rel));
    snprintf(rel, sizeof(rel), "/%s_trail.jsonl", id);
    assert_false(exists(base, rel));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_archive_non_initiator_refused(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "arch");
    struct cbs c = {0};
    shl_ledger *a = open_ledger(base, "cli", &c, 0);
    shl_ledger *b = open_ledger(base, "bridge", &c, 0);
    shl_op *op = NULL, *jop = NULL;
    assert_shl_ok(shl_op_create(a, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(b, shl_op_id(op), NULL, &jop));
    assert_int_equal(shl_op_complete(jop), SHL_ESTATE);
    assert_int_equal(c.backups, 0);
    char rel[400];
    snprintf(rel, sizeof(rel), "/backup/%s", shl_op_id(op));
    assert_false(exists(base, rel));
    assert_shl_ok(shl_op_leave(jop, false));
    assert_shl_ok(shl_op_complete(op));
    assert_int_equal(c.backups, 1);
    shl_ledger_close(b);
    shl_ledger_close(a);
    shl_test_cleanup(base);
}

static int
count_dirs(const char *dir, char names[][256], int cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[1200];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (n < cap)
                snprintf(names[n], 256, "%s", e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void
test_archive_rotation_counts_folders(void **state)
{
    (void)state;
    char base[512], backup[600], outside[600], p[1300];
    shl_test_base(base, sizeof(base), "arch");
    struct cbs c = {0};
    shl_ledger *l = open_ledger(base, "cli", &c, 3);
    snprintf(backup, sizeof(backup), "%s/backup", base);
    /* things in backup/ that are not backups: a file, a symlink to a
     * directory outside (must be neither counted nor followed) */
    snprintf(outside, sizeof(outside), "%s/outside", base);
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(p, sizeof(p), "%s/keep.txt", outside);
    FILE *f = fopen(p, "w");
    fputs("keep", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/0000-link", backup);
    assert_int_equal(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/0000-file.operation.json", backup);
    f = fopen(p, "w");
    fclose(f);

    char ids[5][SHL_OPERATION_ID_MAX + 1];
    for (int i = 0; i < 5; i++) {
        shl_op *op = NULL;
        assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
        strcpy(ids[i], shl_op_id(op));
        if (i == 0) {
            /* an old backup holding a symlink to the outside folder */
            char dir[2048];
            snprintf(dir, sizeof(dir), "%s/%s", backup, ids[i]);
            assert_int_equal(mkdir(dir, 0700), 0);
            snprintf(p, sizeof(p), "%s/%s/link", backup, ids[i]);
            assert_int_equal(symlink(outside, p), 0);
        }
        assert_shl_ok(shl_op_complete(op));
        char names[8][256];
        int n = count_dirs(backup, names, 8);
        assert_int_equal(n, i + 1 > 3 ? 3 : i + 1);
    }
    assert_int_equal(c.backups, 5);
    /* the three newest names survive */
    qsort(ids, 5, sizeof(ids[0]), (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < 5; i++) {
        char dir[2048];
        snprintf(dir, sizeof(dir), "%s/%s", backup, ids[i]);
        struct stat st;
        assert_int_equal(lstat(dir, &st) == 0, i >= 2);
    }
    /* nothing outside was touched; the link and the file are still there */
    snprintf(p, sizeof(p), "%s/keep.txt", outside);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    snprintf(p, sizeof(p), "%s/0000-link", backup);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    snprintf(p, sizeof(p), "%s/0000-file.operation.json", backup);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(c.errors, 0);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_archive_failed_operation(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "arch");
    struct cbs c = {0};
    shl_ledger *l = open_ledger(base, "cli", &c, 0);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    shl_call *call = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &call));
    assert_shl_ok(shl_call_fail(call, "kaputt"));
    assert_int_equal(c.backups, 1);
    char path[1200];
    snprintf(path, sizeof(path), "%s/backup/%s/operation.json", base, id);
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_snapshot_from_json(text, &s));
    assert_int_equal(s->state, SHL_OP_FAILED);
    assert_non_null(strstr(s->failure.reason, "kaputt"));
    assert_int_equal(s->failure.crashed_call_count, 1);
    shl_snapshot_free(s);
    free(text);
    snprintf(path, sizeof(path), "%s/backup/%s/operation.log", base, id);
    text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "[ERROR] CALL_FAILED callId="));
    assert_non_null(strstr(text, "OPERATION_STATE_CHANGED state=failed"));
    free(text);
    (void)shl_op_leave(op, true);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static ssize_t
enospc_write(int fd, const void *buf, size_t len)
{
    (void)fd;
    (void)buf;
    (void)len;
    errno = ENOSPC;
    return -1;
}

static void
test_archive_write_error_reported(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "arch");
    struct cbs c = {0};
    shl_ledger *l = open_ledger(base, "cli", &c, 0);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    assert_shl_ok(shl__snapshotter_flush(l, 5000));
    shl__sys_write = enospc_write;
    /* the operation is completed (op freed), but complete() says the
     * archive is not whole: SHL_EIO (issue 12 item 5; it returned 0) */
    int rc = shl_op_complete(op);
    shl__sys_write = write;
    assert_int_equal(rc, SHL_EIO);
    assert_true(c.errors >= 1);
    assert_int_equal(c.backups, 1);
    char rel[400];
    snprintf(rel, sizeof(rel), "/backup/%s/operation.json", id);
    assert_false(exists(base, rel));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}


/* complete() from a ledger that does not hold the snapshotter role, while
 * the holder sleeps a long period: the flush wakes the holder instead of
 * waiting out its period (it waited up to a period per complete, and past
 * the flush timeout with a period above 2 s). */
static void
test_archive_flush_wakes_holder(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "archwake");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.snapshot_period_ms = 60000;
    shl_ledger *holder = NULL;
    assert_shl_ok(shl_ledger_open(&holder, base, "holder", &o));
    /* the holder's thread takes the role at its first pass */
    assert_true(SHL_WAIT_FOR(shl__snapshotter_held(holder), 5000));
    struct cbs c = {0};
    shl_ledger_opts o2;
    shl_ledger_opts_init(&o2);
    o2.snapshotter = false;
    o2.callbacks.on_backup_created = on_backup;
    o2.callbacks.on_log_line = on_line;
    o2.callbacks.user = &c;
    shl_ledger *cli = NULL;
    assert_shl_ok(shl_ledger_open(&cli, base, "cli", &o2));
    for (int round = 0; round < 3; round++) {
        shl_op *op = NULL;
        assert_shl_ok(shl_op_create(cli, NULL, NULL, &op));
        char id[SHL_OPERATION_ID_MAX + 1];
        strcpy(id, shl_op_id(op));
        shl_call *call = NULL;
        assert_shl_ok(shl_call_start(op, NULL, &call));
        assert_shl_ok(shl_call_end(call, NULL));
        assert_shl_ok(shl_call_release(call));
        int64_t t0 = shl_test_now_ms();
        assert_shl_ok(shl_op_complete(op));
        int64_t took = shl_test_now_ms() - t0;
        /* far below the 60 s period and the 2 s flush timeout */
        assert_true(took < 1500 * shl_test_multiplier());
        /* and the holder did drain: the call lines are in the archive */
        char path[1200];
        snprintf(path, sizeof(path), "%s/backup/%s/operation.log", base, id);
        char *text = shl_test_slurp(path, NULL);
        assert_non_null(text);
        assert_non_null(strstr(text, "CALL_STARTED callId="));
        assert_non_null(strstr(text, "CALL_ENDED callId="));
        free(text);
    }
    assert_int_equal(c.backups, 3);
    assert_int_equal(c.errors, 0);
    shl_ledger_close(cli);
    shl_ledger_close(holder);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archive_complete),
        cmocka_unit_test(test_archive_non_initiator_refused),
        cmocka_unit_test(test_archive_rotation_counts_folders),
        cmocka_unit_test(test_archive_failed_operation),
        cmocka_unit_test(test_archive_write_error_reported),
        cmocka_unit_test(test_archive_flush_wakes_holder),
    };
    return cmocka_run_group_tests_name("archive", tests, NULL, NULL);
}
