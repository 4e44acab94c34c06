/*
 * test_adopt.c: the initiator reconnecting. A ledger that joins under the
 * operation's initiatorId after the initiator's session is gone becomes the
 * initiator (and may complete); while the initiator is present, nobody else
 * does; another participant id never does.
 */
#include <stdio.h>

#include "shl_test.h"

static void
test_adopt_after_initiator_left(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "adopt");
    shl_ledger *a, *b, *c;
    assert_shl_ok(shl_ledger_open(&a, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&b, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&c, base, "bridge", NULL));
    shl_op *op;
    assert_shl_ok(shl_op_create(a, "adopt", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));

    /* the initiator is present: a namesake joins as a plain participant */
    shl_op *early;
    assert_shl_ok(shl_op_join(b, id, NULL, &early));
    assert_false(shl_op_is_initiator(early));
    assert_int_equal(shl_op_complete(early), SHL_ESTATE);
    assert_shl_ok(shl_op_leave(early, false));

    /* the initiator leaves without completing: the operation runs on */
    assert_shl_ok(shl_op_leave(op, false));
    shl_op *other;
    assert_shl_ok(shl_op_join(c, id, NULL, &other));
    assert_false(shl_op_is_initiator(other));

    /* the namesake reconnects as the initiator and completes */
    shl_op *again;
    assert_shl_ok(shl_op_join(b, id, NULL, &again));
    assert_true(shl_op_is_initiator(again));
    /* a second namesake now finds the initiator present */
    shl_op *second;
    assert_shl_ok(shl_op_join(a, id, NULL, &second));
    assert_false(shl_op_is_initiator(second));
    assert_shl_ok(shl_op_leave(second, false));
    assert_shl_ok(shl_op_complete(again));
    assert_int_equal(shl_op_get_state(other), SHL_ESTALE);
    assert_shl_ok(shl_op_leave(other, false));
    assert_segment_clean(shl_ledger_reader(a));
    shl_ledger_close(c);
    shl_ledger_close(b);
    shl_ledger_close(a);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adopt_after_initiator_left),
    };
    return cmocka_run_group_tests_name("adopt", tests, NULL, NULL);
}
