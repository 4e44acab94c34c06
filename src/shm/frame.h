/*
 * frame.h: the call-frame state machine (frame.c), the only writer of a
 * frame's state word. See frame.c for the transitions.
 */
#ifndef SHL_SHM_FRAME_H
#define SHL_SHM_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/segment.h"

/* A frame just claimed by its owner (seqlock open, unpublished): ACTIVE. */
void shl__frame_activate(struct shl__frame *f, uint64_t gen);
/* One step from -> to on the frame of generation gen. True if this call
 * made it (false: the frame is in another state or was reused). */
bool shl__frame_transition(struct shl__frame *f, uint64_t gen, uint32_t from,
                           uint32_t to);
/* from -> GONE, then give the record back. True if this call did both. */
bool shl__frame_retire(struct shl__seg *s, struct shl__frame *f, uint64_t gen,
                       uint32_t from);
/* Any live state but CRASHED -> CRASHED. True if this call marked it. */
bool shl__frame_mark_crashed(struct shl__frame *f, uint64_t gen);
/* Any state but GONE -> GONE, then give the record back (removal). True if
 * this call removed it. */
bool shl__frame_remove(struct shl__seg *s, struct shl__frame *f, uint64_t g);
/* Remove every frame of operation (op_idx, op_gen); returns how many this
 * call removed. */
uint32_t shl__frame_release_op(struct shl__seg *s, uint32_t op_idx,
                               uint64_t op_gen);
/* Give back the record of a frame whose word is (gen, GONE) and that is
 * still ALLOCATED (its remover died between the two, or is just about to
 * do it): one CAS on the (state, seq) pair. True if this call freed it. */
bool shl__frame_finish(struct shl__frame *f, uint64_t gen);
/* shl__frame_finish on every such frame (the reaper, after a death). */
uint32_t shl__frame_finish_all(struct shl__seg *s);

#endif /* SHL_SHM_FRAME_H */
