/*
 * shl_inspect.h: test-only access to internals (crash points, the
 * coordinator of an operation, a slot's pid).
 */
#ifndef SHL_INSPECT_H
#define SHL_INSPECT_H

#include <stdint.h>
#include <sys/types.h>

#include "internal.h"
#include "shmledger/shmledger.h"

/* Participant slot coordinating the cleanup of op's operation, or
 * UINT32_MAX when none. */
uint32_t shl__test_coordinator_slot(shl_reader *r, const char *opid);
/* Real pid recorded in participant slot `slot`. */
pid_t shl__test_slot_pid(shl_reader *r, uint32_t slot);
/* State of the operation (>= 0) or a negative error. */
int shl__test_op_state(shl_reader *r, const char *opid);

#endif
