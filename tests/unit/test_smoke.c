/* test_smoke.c: the shortest end-to-end path (open, create, call, complete). */
#include <stdio.h>
#include <unistd.h>

#include "shl_test.h"

static void
test_smoke_create_call_complete(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "smoke");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "smoke", NULL, &op));
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(l), shl_op_id(op), &s));
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].call_id, shl_call_id(c));
    shl_snapshot_free(s);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_int_equal(shl_call_end(c, NULL), SHL_ESTATE);
    assert_segment_clean(shl_ledger_reader(l));
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smoke_create_call_complete),
    };
    return cmocka_run_group_tests_name("smoke", tests, NULL, NULL);
}
