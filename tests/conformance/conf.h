/*
 * conf.h: helpers of the conformance tier (tests/conformance): the
 * original library's own test suite (tom_dist_ledger, test/ledger_test.dart)
 * ported case by case to the C API. Each cmocka test is named
 * test_<group>__<case> after the original's group and case; EXCLUDED.md
 * lists the cases that do not apply and why. A case that reads a file
 * right after a change opens its ledger with sync_files. Every test uses
 * its own base directory (own segment) and removes it.
 */
#ifndef SHL_CONF_H
#define SHL_CONF_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shl_proc.h"
#include "shl_test.h"
#include "shl_text.h"

/* One test's world: a base directory, a ledger "test", an operation. */
struct conf {
    char base[512];
    shl_ledger *l;
    shl_op *op;
    char id[SHL_OPERATION_ID_MAX + 1];
};

static inline shl_ledger_opts
conf_opts(bool sync_files)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.sync_files = sync_files;
    o.heartbeat_interval_ms = 200;
    return o;
}

/* Open "test" (sync_files as asked) and, if create, create an operation. */
static inline void
conf_setup(struct conf *c, const char *tag, bool sync_files, bool create)
{
    memset(c, 0, sizeof(*c));
    shl_test_base(c->base, sizeof(c->base), tag);
    shl_ledger_opts o = conf_opts(sync_files);
    assert_shl_ok(shl_ledger_open(&c->l, c->base, "test", &o));
    if (create) {
        assert_shl_ok(shl_op_create(c->l, NULL, NULL, &c->op));
        snprintf(c->id, sizeof(c->id), "%s", shl_op_id(c->op));
    }
}

/* Complete the operation if still open (expecting success), close, clean. */
static inline void
conf_teardown(struct conf *c)
{
    if (c->op)
        assert_shl_ok(shl_op_complete(c->op));
    c->op = NULL;
    shl_ledger_close(c->l);
    shl_test_cleanup(c->base);
}

/* The operation failed (deliberate difference: complete() is refused
 * after a failure, the cleanup protocol failed it for everyone): check
 * complete is refused, then leave. */
static inline void
conf_leave_failed(struct conf *c)
{
    assert_int_equal(shl_op_complete(c->op), SHL_ESTATE);
    assert_shl_ok(shl_op_leave(c->op, true));
    c->op = NULL;
}

static inline void
conf_path(char *buf, size_t cap, const struct conf *c, const char *suffix)
{
    snprintf(buf, cap, "%s/%s%s", c->base, c->id, suffix);
}

/* {opId}.operation.json parsed, or NULL if missing. */
static inline shl_snapshot *
conf_json(const struct conf *c)
{
    char p[1024];
    conf_path(p, sizeof(p), c, ".operation.json");
    char *t = shl_test_slurp(p, NULL);
    if (!t)
        return NULL;
    shl_snapshot *s = NULL;
    int rc = shl_snapshot_from_json(t, &s);
    free(t);
    if (rc)
        fail_msg("%s does not parse: %s", p, shl_errmsg());
    return s;
}

static inline bool
conf_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* A log of the operation ("" for .operation.log, ".debug" for the debug
 * log): the live file, or the archived one once the operation was
 * archived (failed operations are archived at once here). */
static inline char *
conf_log(const struct conf *c, const char *kind)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s.operation%s.log", c->base, c->id, kind);
    char *t = shl_test_slurp(p, NULL);
    if (t)
        return t;
    snprintf(p, sizeof(p), "%s/backup/%s/operation%s.log", c->base, c->id,
             kind);
    return shl_test_slurp(p, NULL);
}

/* Does the operation's log contain needle (polling up to ms while an
 * archive may be moving it)? */
static inline bool
conf_log_has(const struct conf *c, const char *kind, const char *needle,
             int ms)
{
    return SHL_WAIT_FOR(({
                            char *t = conf_log(c, kind);
                            bool h = t && strstr(t, needle);
                            free(t);
                            h;
                        }),
                        ms);
}

static inline shl_snapshot *
conf_cached(shl_op *op)
{
    shl_snapshot *s = NULL;
    assert_int_equal(shl_op_cached_data(op, &s), 1);
    assert_non_null(s);
    return s;
}

static inline size_t
conf_cached_frames(shl_op *op)
{
    shl_snapshot *s = conf_cached(op);
    size_t n = s->frame_count;
    shl_snapshot_free(s);
    return n;
}

static inline shl_call *
conf_call(shl_op *op, const char *desc, bool fail_on_crash)
{
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = desc;
    co.fail_on_crash = fail_on_crash;
    shl_call *call = NULL;
    assert_shl_ok(shl_call_start(op, &co, &call));
    return call;
}

/* Wait, polling, until ms milliseconds have passed (the original's
 * Future.delayed inside work functions). */
static inline void
conf_work_for(int ms)
{
    /* strictly after: the clock is read in whole milliseconds */
    int64_t until = shl_test_now_ms() + ms;
    (void)SHL_WAIT_FOR(shl_test_now_ms() > until, ms + 5000);
}

/* ---- another participant in its own process ----
 *
 * Forked before the parent opens anything (no library threads to inherit),
 * it waits for the operation id, opens its own ledger (sync_files), joins,
 * then obeys one-byte commands, answering 'k' (or 'x' on an error):
 *   c  start a call      e  end its last call
 *   t  register /tmp/work.txt   u  unregister it
 *   q  leave, close, exit 0
 */
struct conf_peer {
    pid_t pid;
    int to, from;
};

static inline void
conf_peer_main(const char *base, const char *name, int in, int out,
               int64_t hb_ms)
{
    char id[SHL_OPERATION_ID_MAX + 1] = {0};
    size_t got = 0;
    while (got < sizeof(id)) {
        ssize_t n = read(in, id + got, sizeof(id) - got);
        if (n <= 0)
            _exit(2);
        got += (size_t)n;
    }
    shl_ledger_opts o = conf_opts(true);
    o.heartbeat_interval_ms = hb_ms;
    shl_ledger *l = NULL;
    CHILD_CHECK(shl_ledger_open(&l, base, name, &o));
    shl_op *op = NULL;
    CHILD_CHECK(shl_op_join(l, id, NULL, &op));
    shl_call *calls[16];
    int n = 0;
    char ok = 'k';
    if (write(out, &ok, 1) != 1)
        _exit(3);
    for (;;) {
        char cmd;
        if (read(in, &cmd, 1) != 1)
            break;
        int rc = 0;
        shl_call *c = NULL;
        switch (cmd) {
        case 'c':
            rc = shl_call_start(op, NULL, &c);
            if (rc == 0 && n < 16)
                calls[n++] = c;
            break;
        case 'e':
            rc = n ? shl_call_end(calls[--n], NULL) : -EINVAL;
            break;
        case 't':
            rc = shl_op_register_temp_resource(op, "/tmp/work.txt");
            break;
        case 'u':
            rc = shl_op_unregister_temp_resource(op, "/tmp/work.txt");
            rc = rc < 0 ? rc : 0;
            break;
        case 'q':
            (void)shl_op_leave(op, true);
            shl_ledger_close(l);
            _exit(0);
        default:
            rc = -EINVAL;
        }
        char a = rc == 0 ? 'k' : 'x';
        if (write(out, &a, 1) != 1)
            break;
    }
    shl_ledger_close(l);
    _exit(4);
}

static inline struct conf_peer
conf_peer_fork(const char *base, const char *name, int64_t hb_ms)
{
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    struct conf_peer p = {0};
    p.pid = fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        close(a[1]);
        close(b[0]);
        conf_peer_main(base, name, a[0], b[1], hb_ms);
    }
    close(a[0]);
    close(b[1]);
    p.to = a[1];
    p.from = b[0];
    return p;
}

/* Send one command (or the operation id with cmd 0) and wait for 'k'. */
static inline void
conf_peer_do(struct conf_peer *p, char cmd, const char *id)
{
    if (cmd == 0) {
        char buf[SHL_OPERATION_ID_MAX + 1] = {0};
        snprintf(buf, sizeof(buf), "%s", id);
        assert_int_equal(write(p->to, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    } else {
        assert_int_equal(write(p->to, &cmd, 1), 1);
    }
    char a = 0;
    assert_true(shl_test_read_by(p->from, &a, 1,
                                 shl_test_now_ms() +
                                     10000 * shl_test_multiplier()));
    assert_int_equal(a, 'k');
}

static inline void
conf_peer_quit(struct conf_peer *p)
{
    char q = 'q';
    assert_int_equal(write(p->to, &q, 1), 1);
    assert_child_exited(p->pid, 0);
    close(p->to);
    close(p->from);
}

#endif /* SHL_CONF_H */
