/*
 * test_ledger.c: the original's Ledger groups (initialization,
 * Ledger.connect factory, startOperation, joinOperation, dispose), File
 * Locking (its operation-id validation cases), Concurrent Access, Full
 * Operation Lifecycle and the second joinOperation group. Several
 * participants are separate processes (conf_peer) where the original used
 * several ledgers; a second ledger in this process where the case only
 * looks at the joining side's handle.
 */
#include "conf.h"

static void
on_backup(const char *path, void *user)
{
    (void)path;
    atomic_fetch_add((_Atomic int *)user, 1);
}

/* ---- Ledger / initialization ---- */

static void
test_ledger_initialization__creates_the_ledger_directory_if_it_does_not_exist(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-init", false, false);
    char np[700];
    snprintf(np, sizeof(np), "%s/new_ledger", c.base);
    assert_false(conf_exists(np));
    shl_ledger *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l2, np, "test", NULL));
    assert_true(conf_exists(np));
    shl_ledger_close(l2);
    (void)shl_segment_unlink(np);
    conf_teardown(&c);
}

static void
test_ledger_initialization__base_path_is_accessible(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-init", false, false);
    assert_string_equal(shl_ledger_base_path(c.l), c.base);
    conf_teardown(&c);
}

/* ---- Ledger / Ledger.connect factory ---- */

static void
test_ledger_connect_factory__supports_callbacks_via_ledger_connect(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "conf-connect");
    _Atomic int backups = 0;
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.callbacks.on_backup_created = on_backup;
    o.callbacks.user = (void *)&backups;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "callback_test", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_complete(op));
    assert_true(atomic_load(&backups) > 0);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- Ledger / startOperation ---- */

static void
test_ledger_start_operation__creates_operation_file_in_ledger_directory(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    shl_snapshot *s = conf_json(&c);
    assert_non_null(s);
    assert_string_equal(s->operation_id, c.id);
    assert_string_equal(s->initiator_id, "test");
    assert_false(s->aborted);
    assert_int_equal(s->frame_count, 0);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_ledger_start_operation__call_frames_is_initially_empty(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    shl_snapshot *s = conf_json(&c);
    assert_non_null(s);
    assert_int_equal(s->frame_count, 0);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_ledger_start_operation__creates_operation_with_accessible_operation_id(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    assert_true(strlen(shl_op_id(c.op)) > 0);
    assert_string_equal(shl_op_id(c.op), c.id);
    conf_teardown(&c);
}

static void
test_ledger_start_operation__sets_is_initiator_to_true(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    assert_true(shl_op_is_initiator(c.op));
    conf_teardown(&c);
}

/* ---- Ledger / joinOperation ---- */

static void
test_ledger_join_operation__creates_operation_object_for_existing_operation(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-join", false, true);
    shl_ledger *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l2, c.base, "bridge", NULL));
    shl_op *p = NULL;
    assert_shl_ok(shl_op_join(l2, c.id, NULL, &p));
    assert_string_equal(shl_op_id(p), c.id);
    assert_string_equal(shl_op_participant_id(p), "bridge");
    assert_false(shl_op_is_initiator(p));
    assert_shl_ok(shl_op_leave(p, false));
    shl_ledger_close(l2);
    conf_teardown(&c);
}

static void
test_ledger_join_operation__loads_cached_data_from_existing_operation_file(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-join", false, true);
    shl_ledger *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l2, c.base, "bridge", NULL));
    shl_op *p = NULL;
    assert_shl_ok(shl_op_join(l2, c.id, NULL, &p));
    shl_snapshot *s = conf_cached(p);
    assert_string_equal(s->operation_id, c.id);
    shl_snapshot_free(s);
    assert_shl_ok(shl_op_leave(p, false));
    shl_ledger_close(l2);
    conf_teardown(&c);
}

/* ---- Ledger / dispose ---- */

static void
test_ledger_dispose__stops_all_heartbeats_and_disposes_cleanly(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-dispose", false, true);
    char p[1024];
    conf_path(p, sizeof(p), &c, ".operation.json");
    assert_true(conf_exists(p));
    shl_ledger_close(c.l); /* dispose with the operation open */
    c.l = NULL;
    c.op = NULL;
    shl_test_cleanup(c.base);
}

/* ---- File Locking (operation-id validation) ---- */

static void
test_file_locking__operation_id_validation_rejects_path_traversal_attempts(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-valid", false, false);
    const char *bad[] = {"../../../etc/passwd", "/absolute/path", "",
                         "test<script>"};
    for (size_t i = 0; i < 4; i++) {
        shl_op *op = NULL;
        int rc = shl_op_join(c.l, bad[i], NULL, &op);
        assert_true(rc == SHL_EBADID || rc == -EINVAL);
        assert_null(op);
        assert_int_not_equal(shl_validate_operation_id(bad[i]), 0);
    }
    conf_teardown(&c);
}

static void
test_file_locking__operation_id_validation_accepts_valid_ids(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-valid", false, false);
    const char *good[] = {"20260125T12:30:45.123-cli-abcd1234", "simple_test",
                          "test-with-dashes", "test.with.dots",
                          "TEST_123:456"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(shl_validate_operation_id(good[i]), 0);
        /* accepted by validation; no such operation lives in the segment
         * (operations are created in it, not from files) */
        shl_op *op = NULL;
        assert_int_equal(shl_op_join(c.l, good[i], NULL, &op),
                         SHL_ENOTFOUND);
    }
    conf_teardown(&c);
}

/* ---- Concurrent Access ---- */

static void
test_concurrent_access__multiple_participants_can_modify_the_same_operation(
    void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "conf-conc");
    struct conf_peer bridge = conf_peer_fork(base, "bridge", 200);
    struct conf c;
    memset(&c, 0, sizeof(c));
    snprintf(c.base, sizeof(c.base), "%s", base);
    shl_ledger_opts o = conf_opts(true);
    assert_shl_ok(shl_ledger_open(&c.l, c.base, "cli", &o));
    assert_shl_ok(shl_op_create(c.l, NULL, NULL, &c.op));
    snprintf(c.id, sizeof(c.id), "%s", shl_op_id(c.op));
    conf_peer_do(&bridge, 0, c.id);
    shl_call *mine = conf_call(c.op, "cli-call", true);
    conf_peer_do(&bridge, 'c', NULL);
    shl_snapshot *s = conf_json(&c);
    assert_non_null(s);
    assert_int_equal(s->frame_count, 2);
    shl_snapshot_free(s);
    conf_peer_do(&bridge, 'e', NULL);
    conf_peer_quit(&bridge);
    assert_shl_ok(shl_call_end(mine, NULL));
    conf_teardown(&c);
}

/* ---- Full Operation Lifecycle ---- */

static void
test_full_operation_lifecycle__complete_lifecycle_with_multiple_participants(
    void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "conf-life");
    struct conf_peer bridge = conf_peer_fork(base, "bridge", 200);
    struct conf_peer vscode = conf_peer_fork(base, "vscode", 200);
    struct conf c;
    memset(&c, 0, sizeof(c));
    snprintf(c.base, sizeof(c.base), "%s", base);
    _Atomic int backups = 0;
    shl_ledger_opts o = conf_opts(true);
    o.callbacks.on_backup_created = on_backup;
    o.callbacks.user = (void *)&backups;
    /* 1. CLI starts the operation */
    assert_shl_ok(shl_ledger_open(&c.l, c.base, "cli", &o));
    assert_shl_ok(shl_op_create(c.l, NULL, NULL, &c.op));
    snprintf(c.id, sizeof(c.id), "%s", shl_op_id(c.op));
    shl_call *cli_main = conf_call(c.op, "cli-main", true);
    /* 2. Bridge joins, starts processing, registers a temp resource */
    conf_peer_do(&bridge, 0, c.id);
    conf_peer_do(&bridge, 'c', NULL);
    conf_peer_do(&bridge, 't', NULL);
    /* 3. VS Code joins and calls out */
    conf_peer_do(&vscode, 0, c.id);
    conf_peer_do(&vscode, 'c', NULL);
    shl_snapshot *s = conf_json(&c);
    assert_non_null(s);
    assert_int_equal(s->frame_count, 3);
    assert_int_equal(s->resource_count, 1);
    shl_snapshot_free(s);
    /* 4. unwind in reverse order */
    conf_peer_do(&vscode, 'e', NULL);
    conf_peer_do(&bridge, 'u', NULL);
    conf_peer_do(&bridge, 'e', NULL);
    assert_shl_ok(shl_call_end(cli_main, NULL));
    s = conf_json(&c);
    assert_non_null(s);
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->resource_count, 0);
    shl_snapshot_free(s);
    conf_peer_quit(&vscode);
    conf_peer_quit(&bridge);
    /* 5. complete */
    assert_shl_ok(shl_op_complete(c.op));
    c.op = NULL;
    char p[1024];
    conf_path(p, sizeof(p), &c, ".operation.json");
    assert_false(conf_exists(p));
    snprintf(p, sizeof(p), "%s/backup", c.base);
    assert_true(conf_exists(p));
    /* the original counted one backup per change (> 5); here the archive
     * is one folder and the changes are in its trail */
    assert_true(atomic_load(&backups) >= 1);
    snprintf(p, sizeof(p), "%s/backup/%s/trail.jsonl", c.base, c.id);
    char *trail = shl_test_slurp(p, NULL);
    assert_non_null(trail);
    size_t lines = 0;
    for (char *q = trail; *q; q++)
        lines += *q == '\n';
    assert_true(lines > 5);
    free(trail);
    conf_teardown(&c);
}

/* ---- joinOperation (second group) ---- */

static void
test_join_operation__join_operation_works_like_join_operation(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-join2", false, false);
    shl_ledger *cli = NULL;
    assert_shl_ok(shl_ledger_open(&cli, c.base, "cli", NULL));
    shl_op *init = NULL;
    assert_shl_ok(shl_op_create(cli, NULL, NULL, &init));
    shl_ledger *bridge = NULL;
    assert_shl_ok(shl_ledger_open(&bridge, c.base, "bridge", NULL));
    shl_op *p = NULL;
    assert_shl_ok(shl_op_join(bridge, shl_op_id(init), NULL, &p));
    assert_string_equal(shl_op_id(p), shl_op_id(init));
    assert_string_equal(shl_op_participant_id(p), "bridge");
    assert_false(shl_op_is_initiator(p));
    assert_shl_ok(shl_op_leave(p, false));
    assert_shl_ok(shl_op_complete(init));
    shl_ledger_close(bridge);
    shl_ledger_close(cli);
    conf_teardown(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_ledger_initialization__creates_the_ledger_directory_if_it_does_not_exist),
        cmocka_unit_test(test_ledger_initialization__base_path_is_accessible),
        cmocka_unit_test(
            test_ledger_connect_factory__supports_callbacks_via_ledger_connect),
        cmocka_unit_test(
            test_ledger_start_operation__creates_operation_file_in_ledger_directory),
        cmocka_unit_test(
            test_ledger_start_operation__call_frames_is_initially_empty),
        cmocka_unit_test(
            test_ledger_start_operation__creates_operation_with_accessible_operation_id),
        cmocka_unit_test(
            test_ledger_start_operation__sets_is_initiator_to_true),
        cmocka_unit_test(
            test_ledger_join_operation__creates_operation_object_for_existing_operation),
        cmocka_unit_test(
            test_ledger_join_operation__loads_cached_data_from_existing_operation_file),
        cmocka_unit_test(
            test_ledger_dispose__stops_all_heartbeats_and_disposes_cleanly),
        cmocka_unit_test(
            test_file_locking__operation_id_validation_rejects_path_traversal_attempts),
        cmocka_unit_test(
            test_file_locking__operation_id_validation_accepts_valid_ids),
        cmocka_unit_test(
            test_concurrent_access__multiple_participants_can_modify_the_same_operation),
        cmocka_unit_test(
            test_full_operation_lifecycle__complete_lifecycle_with_multiple_participants),
        cmocka_unit_test(
            test_join_operation__join_operation_works_like_join_operation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
