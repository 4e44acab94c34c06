/*
 * test_heartbeat.c: the original's heartbeat groups: Heartbeat Callbacks,
 * Operation.heartbeat() single call, Global Heartbeat, Heartbeat detects
 * operation state changes. The original made a participant stale by
 * writing an old frame into the JSON file; here a real participant process
 * is stopped with SIGSTOP (the JSON is a view, not an input).
 */
#include "conf.h"

struct hb_rec {
    pthread_mutex_t mu;
    int successes;
    bool ledger_exists, updated;
    char op_id[SHL_OPERATION_ID_MAX + 1];
    int errors[5];
    char stale_msg[256];
    int global[5];
};

static void
on_success(shl_op *op, const shl_heartbeat_result *r, void *user)
{
    struct hb_rec *h = user;
    pthread_mutex_lock(&h->mu);
    h->successes++;
    h->ledger_exists = r->ledger_exists;
    h->updated = r->heartbeat_updated;
    snprintf(h->op_id, sizeof(h->op_id), "%s", shl_op_id(op));
    pthread_mutex_unlock(&h->mu);
}

static void
on_error(shl_op *op, const shl_heartbeat_error *e, void *user)
{
    (void)op;
    struct hb_rec *h = user;
    pthread_mutex_lock(&h->mu);
    h->errors[e->type]++;
    if (e->type == SHL_HB_HEARTBEAT_STALE)
        snprintf(h->stale_msg, sizeof(h->stale_msg), "%s", e->message);
    pthread_mutex_unlock(&h->mu);
}

static void
on_global(shl_op *op, const shl_heartbeat_error *e, void *user)
{
    (void)op;
    struct hb_rec *h = user;
    pthread_mutex_lock(&h->mu);
    h->global[e->type]++;
    pthread_mutex_unlock(&h->mu);
}

static int
count(struct hb_rec *h, int *field)
{
    pthread_mutex_lock(&h->mu);
    int n = *field;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static shl_heartbeat_opts
hb_opts(struct hb_rec *h)
{
    shl_heartbeat_opts o;
    shl_heartbeat_opts_init(&o);
    o.interval_ms = 50;
    o.jitter_ms = 10;
    o.on_success = on_success;
    o.on_error = on_error;
    o.user = h;
    return o;
}

/* ---- Heartbeat Callbacks ---- */

static void
test_heartbeat_callbacks__on_heartbeat_success_is_called_on_successful_heartbeat(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-hb", false, true);
    struct hb_rec h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    shl_heartbeat_opts o = hb_opts(&h);
    assert_shl_ok(shl_op_start_heartbeat(c.op, &o));
    assert_true(SHL_WAIT_FOR(count(&h, &h.successes) > 0, 2000));
    shl_op_stop_heartbeat(c.op);
    pthread_mutex_lock(&h.mu);
    assert_true(h.ledger_exists);
    assert_true(h.updated);
    assert_string_equal(h.op_id, c.id);
    pthread_mutex_unlock(&h.mu);
    conf_teardown(&c);
}

static void
test_heartbeat_callbacks__on_heartbeat_error_called_when_abort_flag_is_set(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-hb", false, true);
    struct hb_rec h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_shl_ok(shl_op_set_abort_flag(c.op, true));
    shl_heartbeat_opts o = hb_opts(&h);
    assert_shl_ok(shl_op_start_heartbeat(c.op, &o));
    assert_true(SHL_WAIT_FOR(
        count(&h, &h.errors[SHL_HB_ABORT_FLAG_SET]) > 0, 2000));
    shl_op_stop_heartbeat(c.op);
    conf_teardown(&c);
}

/* A peer "stale_participant" that joined and started a call, then stops
 * (SIGSTOP). The ledger's stale threshold is long (no fencing during the
 * test); the session's staleness threshold is 1 s. */
static void
stale_world(struct conf *c, struct conf_peer *peer, struct hb_rec *h,
            int64_t hb_ms, bool with_call)
{
    memset(c, 0, sizeof(*c));
    shl_test_base(c->base, sizeof(c->base), "conf-stale");
    *peer = conf_peer_fork(c->base, "stale_participant", 50);
    shl_ledger_opts o = conf_opts(false);
    o.heartbeat_interval_ms = hb_ms;
    o.stale_threshold_ms = 60000;
    o.callbacks.on_global_heartbeat_error = on_global;
    o.callbacks.user = h;
    assert_shl_ok(shl_ledger_open(&c->l, c->base, "test", &o));
    assert_shl_ok(shl_op_create(c->l, NULL, NULL, &c->op));
    snprintf(c->id, sizeof(c->id), "%s", shl_op_id(c->op));
    assert_shl_ok(shl_op_set_staleness_threshold_ms(c->op, 1000));
    conf_peer_do(peer, 0, c->id);
    if (with_call)
        conf_peer_do(peer, 'c', NULL);
    assert_int_equal(kill(peer->pid, SIGSTOP), 0);
}

static void
stale_world_end(struct conf *c, struct conf_peer *peer)
{
    assert_int_equal(kill(peer->pid, SIGCONT), 0);
    conf_peer_quit(peer);
    conf_teardown(c);
}

static void
test_heartbeat_callbacks__on_heartbeat_error_detects_stale_children(
    void **state)
{
    (void)state;
    struct conf c;
    struct conf_peer peer;
    struct hb_rec h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    stale_world(&c, &peer, &h, 5000, true);
    (void)conf_call(c.op, "test-call", true);
    shl_heartbeat_opts o = hb_opts(&h);
    assert_shl_ok(shl_op_start_heartbeat(c.op, &o));
    assert_true(SHL_WAIT_FOR(
        count(&h, &h.errors[SHL_HB_HEARTBEAT_STALE]) > 0, 5000));
    shl_op_stop_heartbeat(c.op);
    pthread_mutex_lock(&h.mu);
    assert_non_null(strstr(h.stale_msg, "stale_participant"));
    pthread_mutex_unlock(&h.mu);
    /* and in the result of a heartbeat that succeeds */
    shl_heartbeat_result *r = NULL;
    assert_shl_ok(shl_op_heartbeat(c.op, &r));
    assert_true(r->is_stale);
    assert_true(r->has_stale_children);
    assert_true(r->stale_count >= 1);
    assert_string_equal(r->stale_participants[0], "stale_participant");
    shl_heartbeat_result_free(r);
    stale_world_end(&c, &peer);
}

/* ---- Operation.heartbeat() single call ---- */

static void
test_operation_heartbeat_single_call__heartbeat_returns_result_on_success(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-hb1", false, true);
    shl_heartbeat_result *r = NULL;
    assert_shl_ok(shl_op_heartbeat(c.op, &r));
    assert_non_null(r);
    assert_true(r->ledger_exists);
    assert_true(r->heartbeat_updated);
    shl_heartbeat_result_free(r);
    conf_teardown(&c);
}

/* ---- Global Heartbeat ---- */

static void
test_global_heartbeat__global_heartbeat_auto_starts_and_detects_stale_operations(
    void **state)
{
    (void)state;
    struct conf c;
    struct conf_peer peer;
    struct hb_rec h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    /* no start_heartbeat: the session's heartbeat runs on its own; the
     * stopped peer has no call frame (a member is enough) */
    stale_world(&c, &peer, &h, 30, false);
    assert_true(SHL_WAIT_FOR(
        count(&h, &h.global[SHL_HB_HEARTBEAT_STALE]) > 0, 5000));
    stale_world_end(&c, &peer);
}

/* ---- Heartbeat detects operation state changes ---- */

static void
test_heartbeat_detects_operation_state_changes__heartbeat_signals_failure_when_operation_enters_cleanup_state(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-hbst", false, true);
    assert_shl_ok(shl_op_set_state(c.op, SHL_OP_CLEANUP));
    shl_heartbeat_result *r = NULL;
    assert_shl_ok(shl_op_heartbeat(c.op, &r));
    assert_non_null(r);
    shl_heartbeat_result_free(r);
    shl_failed_info info;
    assert_int_equal(shl_op_wait_failure(c.op, 5000, &info), 0);
    conf_leave_failed(&c);
    conf_teardown(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_heartbeat_callbacks__on_heartbeat_success_is_called_on_successful_heartbeat),
        cmocka_unit_test(
            test_heartbeat_callbacks__on_heartbeat_error_called_when_abort_flag_is_set),
        cmocka_unit_test(
            test_heartbeat_callbacks__on_heartbeat_error_detects_stale_children),
        cmocka_unit_test(
            test_operation_heartbeat_single_call__heartbeat_returns_result_on_success),
        cmocka_unit_test(
            test_global_heartbeat__global_heartbeat_auto_starts_and_detects_stale_operations),
        cmocka_unit_test(
            test_heartbeat_detects_operation_state_changes__heartbeat_signals_failure_when_operation_enters_cleanup_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
