/* test_faults.c: issue 12 items 5-10: write failures reported, durable
 * archives, unsafe segment modes refused, temp resources that name "/" or
 * lead out through a link, participant text that is not text, truncated
 * segments, a garbled structure mutex, shl_errmsg cleared on entry, and
 * shl_op_start_heartbeat(op, NULL). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash/resources.h"
#include "files/json.h"
#include "files/snapshotter.h"
#include "shm/lock.h"
#include "internal.h"
#include "objects.h"
#include "shl_test.h"
#include "shl_text.h"

/* on_log_line runs on the snapshotter thread as well as the test's own:
 * an atomic count, the last line under a lock. */
struct lines {
    _Atomic int errors;
    char last[1024];
};
static pthread_mutex_t lines_mu = PTHREAD_MUTEX_INITIALIZER;

static void
on_line(const char *line, void *user)
{
    struct lines *c = user;
    if (strstr(line, "[Ledger]")) {
        c->errors++;
        pthread_mutex_lock(&lines_mu);
        snprintf(c->last, sizeof(c->last), "%s", line);
        pthread_mutex_unlock(&lines_mu);
    }
}

static shl_ledger *
open_l(const char *base, const char *pid, struct lines *c)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    if (c) {
        o.callbacks.on_log_line = on_line;
        o.callbacks.user = c;
    }
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, pid, &o));
    return l;
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

/* ---- item 5: write failures ---- */

/* complete() on a full disk: SHL_EIO (the operation is completed and op
 * freed), reported through on_log_line; it returned 0 before. The record
 * waits for a sweep that writes the archive once the disk has room. */
static void
test_complete_enospc_is_eio(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-enospc");
    struct lines c = {0};
    shl_ledger *l = open_l(base, "p", &c);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "before the disk filled"));
    shl__sys_write = enospc_write;
    int rc = shl_op_complete(op);
    shl__sys_write = write;
    assert_int_equal(rc, SHL_EIO);
    assert_non_null(strstr(shl_errmsg(), "archive of"));
    assert_true(c.errors >= 1);
    /* the operation is completed all the same (op is gone), but its record
     * stays until an archive is whole on disk: nothing is dropped */
    shl_op_summary *rows = NULL;
    size_t n = 0;
    assert_shl_ok(shl_reader_list(shl_ledger_reader(l), &rows, &n));
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].state, SHL_OP_COMPLETED);
    free(rows);
    char json[1024];
    snprintf(json, sizeof(json), "%s/backup/%s/operation.json", base, id);
    assert_int_not_equal(access(json, F_OK), 0);
    /* the disk has room again: the next sweep writes the archive, then
     * frees the record */
    assert_true(shl_ledger_reap(l) >= 0);
    assert_int_equal(access(json, F_OK), 0);
    assert_shl_ok(shl_reader_list(shl_ledger_reader(l), &rows, &n));
    assert_int_equal(n, 0);
    free(rows);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* create() whose files cannot be written refuses the operation and keeps
 * nothing in the segment (it returned 0 and ran without files). */
static void
test_create_unwritable_refused(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-create");
    struct lines c = {0};
    shl_ledger *l = open_l(base, "p", &c);
    shl_op *op = NULL;
    shl__sys_write = enospc_write;
    int rc = shl_op_create(l, NULL, NULL, &op);
    shl__sys_write = write;
    assert_int_equal(rc, SHL_EIO);
    assert_true(c.errors >= 1);
    shl_op_summary *rows = NULL;
    size_t n = 0;
    assert_shl_ok(shl_reader_list(shl_ledger_reader(l), &rows, &n));
    assert_int_equal(n, 0);
    free(rows);
    assert_segment_clean(shl_ledger_reader(l));
    /* and the next create, with room again, works */
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* The tmpfs mount point, unmounted by the teardown even when an assertion
 * failed half-way. */
static char tmpfs_dir[512];

static int
tmpfs_teardown(void **state)
{
    (void)state;
    if (tmpfs_dir[0]) {
        char base[600];
        snprintf(base, sizeof(base), "%s/base", tmpfs_dir);
        shl_segment_unlink_force(base);
        umount2(tmpfs_dir, MNT_DETACH);
        rmdir(tmpfs_dir);
        tmpfs_dir[0] = 0;
    }
    return 0;
}

/* A real full tmpfs (root only): create, log lines, fill the disk,
 * complete: SHL_EIO, never 0 with a partial archive. */
static void
test_full_tmpfs_complete(void **state)
{
    (void)state;
    char dir[512];
    shl_test_base(dir, sizeof(dir), "f-tmpfs");
    assert_int_equal(mkdir(dir, 0700), 0);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        int e = errno;
        rmdir(dir);
        print_message("[  SKIP    ] cannot mount a 64k tmpfs at %s (%s): "
                      "mounting needs root\n",
                      dir, strerror(e));
        skip();
    }
    snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s", dir);
    char base[600];
    snprintf(base, sizeof(base), "%s/base", dir);
    struct lines c = {0};
    shl_ledger *l = open_l(base, "p", &c);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    /* fill the filesystem */
    char fill[700];
    snprintf(fill, sizeof(fill), "%s/fill", dir);
    int fd = open(fill, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    char blk[4096];
    memset(blk, 'x', sizeof(blk));
    while (write(fd, blk, sizeof(blk)) > 0)
        ;
    close(fd);
    for (int i = 0; i < 50; i++)
        (void)shl_op_log(op, SHL_LOG_INFO, "a line that has no room");
    int rc = shl_op_complete(op);
    assert_int_equal(rc, SHL_EIO);
    assert_true(c.errors >= 1);
    shl_ledger_close(l);
}

/* ---- item 6: durability ---- */

static _Atomic int fsyncs;
static int
count_fsync(int fd)
{
    atomic_fetch_add(&fsyncs, 1);
    return fsync(fd);
}

static int
eio_fsync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

static void
test_complete_is_durable(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-durable");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "keep me"));
    atomic_store(&fsyncs, 0);
    shl__sys_fsync = count_fsync;
    int rc = shl_op_complete(op);
    shl__sys_fsync = fsync;
    assert_shl_ok(rc);
    /* operation.json, the moved logs and trail, the folder, backup/, the
     * base directory */
    assert_true(atomic_load(&fsyncs) >= 5);
    shl_ledger_close(l);

    /* a failing fsync is a failed complete */
    shl_test_cleanup(base);
    shl_test_base(base, sizeof(base), "f-durable2");
    l = open_l(base, "p", NULL);
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl__sys_fsync = eio_fsync;
    rc = shl_op_complete(op);
    shl__sys_fsync = fsync;
    assert_int_equal(rc, SHL_EIO);
    shl_ledger_close(l);

    /* durable = false: no fsync at all */
    shl_test_cleanup(base);
    shl_test_base(base, sizeof(base), "f-durable3");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    assert_true(o.durable);
    o.durable = false;
    assert_shl_ok(shl_ledger_open(&l, base, "p", &o));
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    atomic_store(&fsyncs, 0);
    shl__sys_fsync = count_fsync;
    rc = shl_op_complete(op);
    shl__sys_fsync = fsync;
    assert_shl_ok(rc);
    assert_int_equal(atomic_load(&fsyncs), 0);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- item 7: unsafe modes ---- */

static int
chmod_segment(const char *base, mode_t m)
{
    char name[128];
    if (shl_segment_name(base, name, sizeof(name)) < 0)
        return -1;
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0)
        return -1;
    int rc = fchmod(fd, m);
    close(fd);
    return rc;
}

static void
test_unsafe_modes_refused(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-mode");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.mode = 0666;
    shl_ledger *l = NULL;
    assert_int_equal(shl_ledger_open(&l, base, "p", &o), -EINVAL);
    l = open_l(base, "p", NULL);
    shl_ledger_close(l);

    assert_int_equal(chmod_segment(base, 0666), 0);
    assert_int_equal(shl_ledger_open(&l, base, "p", NULL), SHL_EUNSAFE);
    assert_non_null(strstr(shl_errmsg(), "world-writable"));
    shl_reader *r = NULL;
    assert_int_equal(shl_reader_open(&r, base), SHL_EUNSAFE);

    /* group access: only when asked for (and our group) */
    assert_int_equal(chmod_segment(base, 0660), 0);
    assert_int_equal(shl_ledger_open(&l, base, "p", NULL), SHL_EUNSAFE);
    assert_non_null(strstr(shl_errmsg(), "group"));
    o.mode = 0660;
    assert_shl_ok(shl_ledger_open(&l, base, "p", &o));
    shl_ledger_close(l);
    assert_shl_ok(shl_reader_open(&r, base));
    shl_reader_close(r);
    assert_string_equal(shl_strerror(SHL_EUNSAFE),
                        "segment permissions are unsafe (world-writable or "
                        "unexpected group access)");
    shl_test_cleanup(base);
}

/* ---- item 8: temp resources ---- */

static void
test_temp_refuses_root_and_base(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-temp");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    const char *bad[] = {"/", "//", "/.", "/../..", "/tmp/../", "/./"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = shl_op_register_temp_resource(op, bad[i]);
        if (rc != -EINVAL)
            fail_msg("'%s' accepted as a temp resource (%d)", bad[i], rc);
    }
    /* the base directory itself, and every ancestor */
    char p[600];
    assert_int_equal(shl_op_register_temp_resource(op, base), -EINVAL);
    snprintf(p, sizeof(p), "%s/", base);
    assert_int_equal(shl_op_register_temp_resource(op, p), -EINVAL);
    snprintf(p, sizeof(p), "%s/backup/..", base);
    assert_int_equal(shl_op_register_temp_resource(op, p), -EINVAL);
    snprintf(p, sizeof(p), "%s", base);
    char *slash;
    while ((slash = strrchr(p, '/')) && slash != p) {
        *slash = 0;
        int rc = shl_op_register_temp_resource(op, p);
        if (rc != -EINVAL)
            fail_msg("ancestor '%s' accepted (%d)", p, rc);
    }
    /* the archive of every operation, and anything in it */
    snprintf(p, sizeof(p), "%s/backup", base);
    assert_int_equal(shl_op_register_temp_resource(op, p), -EINVAL);
    snprintf(p, sizeof(p), "%s/backup/some-op/operation.json", base);
    assert_int_equal(shl_op_register_temp_resource(op, p), -EINVAL);
    /* top-level and system directories, and the home directory: cleanup
     * deletes recursively with the cleaner's rights (a trial program run
     * as root lost /etc and /home this way) */
    const char *sys[] = {"/etc",          "/home",      "/tmp",
                         "/var/tmp",      "/opt",       "/root",
                         "/etc/passwd",   "/usr/lib",   "/usr/local/bin/x",
                         "/var/lib/dpkg", "/var/log/x", "/proc/1",
                         "/sys/kernel",   "/dev/sda",   "/dev/shm",
                         "/boot/vmlinuz", "/home/user", "/run/user"};
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
        int rc = shl_op_register_temp_resource(op, sys[i]);
        if (rc != -EINVAL)
            fail_msg("'%s' accepted as a temp resource (%d)", sys[i], rc);
    }
    const char *home = getenv("HOME");
    if (home && home[0] == '/')
        assert_int_equal(shl_op_register_temp_resource(op, home), -EINVAL);
    /* what temp files are: their entries are fine */
    const char *ok[] = {"/tmp/x", "/var/tmp/x", "/dev/shm/x",
                        "/home/user/scratch", "/opt/app/tmp"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = shl_op_register_temp_resource(op, ok[i]);
        if (rc != 0)
            fail_msg("'%s' refused as a temp resource (%d: %s)", ok[i], rc,
                     shl_errmsg());
        assert_int_equal(shl_op_unregister_temp_resource(op, ok[i]), 1);
    }
    /* inside the base is fine */
    snprintf(p, sizeof(p), "%s/scratch", base);
    assert_shl_ok(shl_op_register_temp_resource(op, p));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A path through a symlinked intermediate directory must not delete the
 * file the link leads to. */
static void
test_temp_delete_never_follows_intermediate_link(void **state)
{
    (void)state;
    char base[512], outside[600], victim[700], link[700], reg[800];
    shl_test_base(base, sizeof(base), "f-tlink");
    shl_ledger *l = open_l(base, "p", NULL);
    snprintf(outside, sizeof(outside), "%s-outside", base);
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(victim, sizeof(victim), "%s/victim", outside);
    int fd = open(victim, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(link, sizeof(link), "%s/link", base);
    assert_int_equal(symlink(outside, link), 0);
    snprintf(reg, sizeof(reg), "%s/victim", link);
    shl__delete_temp_path(l, reg);
    assert_int_equal(access(victim, F_OK), 0);
    /* a registered file reached without links is deleted */
    char own[700];
    snprintf(own, sizeof(own), "%s/own", base);
    fd = open(own, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    shl__delete_temp_path(l, own);
    assert_int_not_equal(access(own, F_OK), 0);
    /* and "/" read back from the segment is never acted on */
    shl__delete_temp_path(l, "/");
    shl__delete_temp_path(l, base);
    assert_int_equal(access(base, F_OK), 0);
    unlink(victim);
    rmdir(outside);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- item 9: text that is not text ---- */

static void
test_text_escaped_in_files(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-text");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "desc \xff\xfe bad", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    shl_call *c;
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = "c \xc3";
    co.fail_on_crash = false; /* failing it must not fail the operation */
    assert_shl_ok(shl_call_start(op, &co, &c));
    assert_shl_ok(shl_call_fail(c, "bad \xff\xc0\x80 bytes\nFORGED line"));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO,
                             "first\n2026-01-01T00:00:00 [ERROR] FORGED\r"
                             "\x1b[2J"));
    assert_shl_ok(shl__snapshotter_flush(l, 5000));
    char path[700];
    /* every trail line is valid JSON */
    snprintf(path, sizeof(path), "%s/%s_trail.jsonl", base, id);
    char *trail = shl_test_slurp(path, NULL);
    assert_non_null(trail);
    int lines = 0;
    for (char *save = NULL, *ln = strtok_r(trail, "\n", &save); ln;
         ln = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *j = json_loads(ln, 0, &je);
        if (!j)
            fail_msg("invalid JSON trail line: %s (%s)", ln, je.text);
        json_decref(j);
        lines++;
    }
    assert_true(lines >= 1);
    free(trail);
    /* the log: no forged line, no raw control byte */
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, id);
    char *log = shl_test_slurp(path, NULL);
    assert_non_null(log);
    if (!strstr(log, "first\\n2026"))
        fail_msg("message not escaped in the log: %s", log);
    for (char *save = NULL, *ln = strtok_r(log, "\n", &save); ln;
         ln = strtok_r(NULL, "\n", &save)) {
        if (!shl_test_rx_match("^[0-9]{4}-[0-9]{2}-[0-9]{2}T", ln) ||
            strstr(ln, "FORGED") == ln)
            fail_msg("forged log line: %s", ln);
        for (const char *q = ln; *q; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t')
                fail_msg("control byte 0x%02x in log line: %s",
                         (unsigned char)*q, ln);
    }
    free(log);
    assert_shl_ok(shl_op_complete(op));
    /* the archived operation.json keeps the description, as U+FFFD */
    snprintf(path, sizeof(path), "%s/backup/%s/operation.json", base, id);
    char *js = shl_test_slurp(path, NULL);
    assert_non_null(js);
    assert_non_null(strstr(js, "desc \xef\xbf\xbd\xef\xbf\xbd bad"));
    free(js);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_text_helpers(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(shl__utf8_fix("a\xff"
                                   "b",
                                   3, out),
                     5);
    assert_string_equal(out, "a\xef\xbf\xbd"
                             "b");
    assert_true(shl__utf8_valid("\xc3\xa9", 2));
    assert_false(shl__utf8_valid("\xc0\x80", 2));     /* overlong */
    assert_false(shl__utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(shl__utf8_valid("\xe2\x82", 2));     /* cut short */
    shl__logsafe("a\nb\rc\x1b[d\te", 10, out);
    assert_string_equal(out, "a\\nb\\rc\\x1b[d\te");
    shl__logsafe("\xc2\x9b"
                 "x",
                 3, out); /* C1 CSI */
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbdx");
}

/* ---- item 10 ---- */

/* A reader of a segment truncated behind its back reports it gone instead
 * of dying of SIGBUS. */
static void
test_truncated_segment_reader_survives(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-trunc");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    shl_ledger_close(l); /* the operation stays, running */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shl_reader *r;
        CHILD_CHECK(shl_reader_open(&r, base));
        char name[128];
        CHILD_CHECK(shl_segment_name(base, name, sizeof(name)));
        int fd = shm_open(name, O_RDWR, 0);
        if (fd < 0 || ftruncate(fd, 4096) != 0)
            _exit(2);
        close(fd);
        shl_snapshot *s = NULL;
        int rc = shl_reader_snapshot(r, id, &s);
        if (rc != SHL_ECORRUPT)
            _exit(3);
        shl_op_summary *rows;
        size_t n;
        if (shl_reader_list(r, &rows, &n) != SHL_ECORRUPT)
            _exit(4);
        shl_segment_info info;
        if (shl_reader_info(r, &info) != SHL_ECORRUPT)
            _exit(5);
        shl_check_report rep;
        if (shl_reader_check(r, &rep) < 1)
            _exit(6);
        shl_reader_close(r);
        shl_reader *r2;
        if (shl_reader_open(&r2, base) != SHL_ECORRUPT)
            _exit(7);
        _exit(0);
    }
    assert_child_exited(pid, 0);
    shl_test_cleanup(base);
}

/* A garbled structure mutex is corruption: the checker says so and a
 * ledger is refused with SHL_ECORRUPT (not a bare errno). */
static void
test_garbled_mutex(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-mutex");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_ledger_close(l);
    shl_reader *r;
    assert_shl_ok(shl_reader_open(&r, base));
    shl_check_report rep;
    assert_int_equal(shl_reader_check(r, &rep), 0);
    char name[128];
    assert_true(shl_segment_name(base, name, sizeof(name)) > 0);
    int fd = shm_open(name, O_RDWR, 0);
    assert_true(fd >= 0);
    struct shl__hdr *h =
        mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(h != MAP_FAILED);
    close(fd);
    memset(&h->mutex, 0x5a, sizeof(h->mutex));
    munmap(h, sizeof(*h));
    assert_true(shl_reader_check(r, &rep) >= 1);
    assert_non_null(strstr(rep.text, "mutex"));
    shl_reader_close(r);
    assert_int_equal(shl_ledger_open(&l, base, "p", NULL), SHL_ECORRUPT);
    assert_non_null(strstr(shl_errmsg(), "mutex"));
    shl_test_cleanup(base);
}

/* Every public function clears the previous call's message on entry. */
static void
test_errmsg_cleared_on_entry(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-errmsg");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_reader *r = shl_ledger_reader(l);
#define STALE_THEN(expr)                                                       \
    do {                                                                       \
        assert_int_equal(shl_op_set_staleness_threshold_ms(op, -5), -EINVAL);  \
        assert_true(shl_errmsg()[0] != 0);                                     \
        int _rc = (int)(expr);                                                 \
        (void)_rc;                                                             \
        if (shl_errmsg()[0] != 0)                                              \
            fail_msg("%s left the previous message: %s", #expr, shl_errmsg()); \
    } while (0)
    shl_segment_info info;
    STALE_THEN(shl_reader_info(r, &info));
    shl_op_summary *rows = NULL;
    size_t n = 0;
    STALE_THEN(shl_reader_list(r, &rows, &n));
    free(rows);
    shl_participant_info *parts = NULL;
    STALE_THEN(shl_reader_participants(r, &parts, &n));
    free(parts);
    shl_snapshot *s = NULL;
    STALE_THEN(shl_reader_snapshot(r, shl_op_id(op), &s));
    shl_snapshot_free(s);
    char name[128];
    STALE_THEN(shl_segment_name(base, name, sizeof(name)));
    STALE_THEN(shl_op_get_state(op));
    STALE_THEN(shl_op_check_abort(op));
    STALE_THEN(shl_op_is_aborted(op));
    STALE_THEN(shl_validate_operation_id(shl_op_id(op)));
    STALE_THEN(shl_op_pending_call_count(op));
    STALE_THEN(shl_op_event_fd(op));
    shl_call *c = NULL;
    STALE_THEN(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    shl_heartbeat_opts ho;
    shl_heartbeat_opts_init(&ho);
    STALE_THEN(shl_op_start_heartbeat(op, &ho));
    STALE_THEN(shl_ledger_heartbeat(l));
#undef STALE_THEN
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_start_heartbeat_null_opts(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-hbnull");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_int_equal(shl_op_start_heartbeat(op, NULL), -EINVAL);
    assert_int_equal(shl_op_start_heartbeat(NULL, NULL), -EINVAL);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A record caught in mid-write (its sequence odd: a writer preempted on a
 * loaded machine, or dead) is busy, not gone. The reader used to give up
 * after 1,000 tries (the id lookup after 64) and report the live operation
 * as SHL_ENOTFOUND, and drop a busy frame from a snapshot without a word.
 * Now it waits while the writer may finish (the structure lock has a live
 * holder; a frame's owner is alive), and says -EAGAIN when it does not. */
struct writer {
    shl_ledger *l;
    _Atomic uint32_t *seq;
    bool take_lock;
    int hold_ms;
    _Atomic int started;
};

/* A writer in mid-write for hold_ms: (lock,) seq odd, ..., seq even
 * (, unlock), as a locked mutation of the library does. */
static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    if (w->take_lock && shl__lock(&w->l->seg, 5000) != 0)
        return NULL;
    atomic_fetch_add(w->seq, 1);
    atomic_store(&w->started, 1);
    int64_t until = shl_test_now_ms() + w->hold_ms;
    while (shl_test_now_ms() < until)
        shl_test_pause_ms(1);
    atomic_fetch_add(w->seq, 1); /* even again: the write ended */
    if (w->take_lock)
        shl__unlock(&w->l->seg);
    return NULL;
}

static void
start_writer(struct writer *w, pthread_t *th)
{
    atomic_store(&w->started, 0);
    assert_int_equal(pthread_create(th, NULL, writer_main, w), 0);
    assert_true(SHL_WAIT_FOR(atomic_load(&w->started), 5000));
}

static void
test_reader_busy_is_not_gone(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-busy");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_reader *r = shl_ledger_reader(l);
    struct shl__op *rec = shl__op_at(&l->seg, op->lop->op_idx);
    shl_snapshot *s = NULL;
    shl_op_summary *rows = NULL;
    size_t n = 0;
    pthread_t th;

    /* a writer that holds the lock and finishes after 30 ms: waited for */
    struct writer w = {.l = l, .seq = &rec->h.seq, .take_lock = true,
                       .hold_ms = 30};
    start_writer(&w, &th);
    assert_shl_ok(shl_reader_snapshot(r, shl_op_id(op), &s));
    assert_string_equal(s->operation_id, shl_op_id(op));
    shl_snapshot_free(s);
    pthread_join(th, NULL);
    start_writer(&w, &th);
    assert_shl_ok(shl_reader_list(r, &rows, &n));
    assert_int_equal(n, 1);
    free(rows);
    pthread_join(th, NULL);

    /* one that holds it longer than the reader waits: -EAGAIN, not gone */
    w.hold_ms = 600;
    start_writer(&w, &th);
    int64_t t0 = shl_test_now_ms();
    s = NULL;
    assert_int_equal(shl_reader_snapshot(r, shl_op_id(op), &s), -EAGAIN);
    assert_null(s);
    assert_true(strstr(shl_errmsg(), "mid-write") != NULL);
    assert_true(shl_test_now_ms() - t0 >= 150);
    pthread_join(th, NULL);

    /* a dead writer (sequence odd, nobody holds the lock): -EAGAIN at
     * once, from the lookup, the list and a join (waiting, each would take
     * 200 ms: 600 ms for the three) */
    shl_ledger *l2 = open_l(base, "q", NULL);
    shl_op *op2 = NULL;
    atomic_fetch_add(&rec->h.seq, 1);
    t0 = shl_test_now_ms();
    assert_int_equal(shl_reader_snapshot(r, shl_op_id(op), &s), -EAGAIN);
    rows = NULL;
    assert_int_equal(shl_reader_list(r, &rows, &n), -EAGAIN);
    assert_null(rows);
    assert_int_equal(shl_op_join(l2, shl_op_id(op), NULL, &op2), -EAGAIN);
    assert_null(op2);
    assert_true(shl_test_now_ms() - t0 < 450);
    atomic_fetch_add(&rec->h.seq, 1);

    /* a frame in mid-write by its live owner (frames are written without
     * the lock) is waited for, never dropped */
    shl_call *call;
    assert_shl_ok(shl_call_start(op, NULL, &call));
    struct shl__frame *fr = shl__frame_at(&l->seg, call->frame_idx);
    struct writer fw = {.l = l, .seq = &fr->h.seq, .take_lock = false,
                        .hold_ms = 30};
    start_writer(&fw, &th);
    assert_shl_ok(shl_reader_snapshot(r, shl_op_id(op), &s));
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].call_id, shl_call_id(call));
    shl_snapshot_free(s);
    pthread_join(th, NULL);
    fw.hold_ms = 600;
    start_writer(&fw, &th);
    assert_int_equal(shl_reader_snapshot(r, shl_op_id(op), &s), -EAGAIN);
    pthread_join(th, NULL);
    assert_shl_ok(shl_reader_list(r, &rows, &n));
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].frame_count, 1);
    free(rows);

    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &op2));
    assert_shl_ok(shl_op_leave(op2, false));
    shl_ledger_close(l2);
    assert_shl_ok(shl_call_end(call, NULL));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* shl_segment_unlink refuses a segment in use: removing it split the
 * ledger in two (a trial: the README's example unlinked the segment a
 * running `shmledger run` was using; `list` then said "no ledger"). */
static void
test_unlink_refuses_live_segment(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-unlink");
    shl_ledger *l = open_l(base, "p", NULL);
    assert_int_equal(shl_segment_unlink(base), -EBUSY);
    assert_true(strstr(shl_errmsg(), "in use") != NULL);
    shl_ledger_close(l);
    assert_shl_ok(shl_segment_unlink(base));
    assert_int_equal(shl_segment_unlink(base), -ENOENT);
    /* force removes it whoever uses it */
    l = open_l(base, "p", NULL);
    assert_shl_ok(shl_segment_unlink_force(base));
    assert_int_equal(shl_segment_unlink_force(base), -ENOENT);
    shl_ledger_close(l);
    assert_int_equal(shl_segment_unlink(NULL), -EINVAL);
    assert_int_equal(shl_segment_unlink_force(NULL), -EINVAL);
    shl_test_cleanup(base);
}

/* A call failing while the operation is already failing (cleanup) is not
 * its cause: the first failure's reason stands and the call is not listed
 * as crashed (a trial: survivors' calls, stopped by the cleanup, replaced
 * the reason and joined crashedCallIds). */
static void
test_fail_during_cleanup_keeps_cause(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "f-failclean");
    shl_ledger *l = open_l(base, "p", NULL);
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.fail_on_crash = true;
    shl_call *c;
    assert_shl_ok(shl_call_start(op, &co, &c));
    char cid[SHL_CALL_ID_MAX + 1];
    snprintf(cid, sizeof(cid), "%s", shl_call_id(c));
    assert_shl_ok(shl_op_set_state(op, SHL_OP_CLEANUP));
    shl_failed_info before;
    assert_int_equal(shl_op_failure_info(op, &before), 1);
    (void)shl_call_fail(c, "killed by signal 15");
    shl_failed_info after;
    assert_int_equal(shl_op_failure_info(op, &after), 1);
    assert_string_equal(after.reason, before.reason);
    assert_true(strstr(after.reason, "set to cleanup") != NULL);
    for (uint32_t k = 0; k < after.crashed_call_count; k++)
        if (strcmp(after.crashed_call_ids[k], cid) == 0)
            fail_msg("call %s, failed during the cleanup, listed as crashed",
                     cid);
    (void)shl_op_leave(op, true);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_enospc_is_eio),
        cmocka_unit_test(test_create_unwritable_refused),
        cmocka_unit_test_teardown(test_full_tmpfs_complete, tmpfs_teardown),
        cmocka_unit_test(test_complete_is_durable),
        cmocka_unit_test(test_unsafe_modes_refused),
        cmocka_unit_test(test_temp_refuses_root_and_base),
        cmocka_unit_test(test_temp_delete_never_follows_intermediate_link),
        cmocka_unit_test(test_text_escaped_in_files),
        cmocka_unit_test(test_text_helpers),
        cmocka_unit_test(test_truncated_segment_reader_survives),
        cmocka_unit_test(test_garbled_mutex),
        cmocka_unit_test(test_errmsg_cleared_on_entry),
        cmocka_unit_test(test_start_heartbeat_null_opts),
        cmocka_unit_test(test_reader_busy_is_not_gone),
        cmocka_unit_test(test_unlink_refuses_live_segment),
        cmocka_unit_test(test_fail_during_cleanup_keeps_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
