/*
 * shl_inspect.h: test-only access to internals (crash points, the
 * coordinator of an operation, a slot's pid).
 */
#ifndef SHL_INSPECT_H
#define SHL_INSPECT_H

#include <stdbool.h>
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

/* Frame records left ALLOCATED with their state word GONE (a releaser
 * that died between the two), and records of any table whose seqlock is
 * odd while no writer can be inside (FREE, RECLAIMED or ALLOCATED). */
uint32_t shl__test_frames_gone_allocated(shl_reader *r);
uint32_t shl__test_odd_seqs(shl_reader *r);
/* Is operation id still in the segment (any state)? */
bool shl__test_op_exists(shl_reader *r, const char *opid);
/* Clear every member bit of operation opid (to simulate the last member
 * leaving before the operation became failed). 0 or -ENOENT. */
int shl__test_clear_members(shl_reader *r, const char *opid);
/* Move operation opid to `cleanup` directly (as detection does), with no
 * coordinator. 0 or -ENOENT. */
int shl__test_set_cleanup(shl_reader *r, const char *opid);
/* Leave the frame of call_id as a remover killed inside main's release
 * did: word GONE, record ALLOCATED, seqlock odd. 0 or -ENOENT. */
int shl__test_frame_half_removed(shl_reader *r, const char *call_id);
#endif
