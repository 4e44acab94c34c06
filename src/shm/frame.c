/*
 * frame.c: the call-frame state machine. These functions are the only
 * writers of a frame's state word (`fword`: the record's generation and a
 * shl_frame_state, or SHL__F_GONE); everyone else only reads it.
 *
 *   claimed --activate--> ACTIVE --retire--> GONE (the owner's end/fail)
 *   ACTIVE --transition--> CLEANING_UP (our frames when we coordinate)
 *   ACTIVE --transition--> CLEANED_UP  (self-cleanup)
 *   ACTIVE | CLEANING_UP | CLEANED_UP --mark_crashed--> CRASHED (detection)
 *   CRASHED --retire--> GONE (a contained crash)
 *   any but GONE --remove--> GONE (removal, reaping, complete)
 *
 * Every step is one CAS on the 64-bit word, so a frame stays readable after
 * a death at any instruction, and the generation in the word makes a step
 * aimed at an older incarnation of the record fail instead of landing on a
 * new one. Going GONE is what gives the record back: whoever wins that CAS
 * releases it (shl__frame_finish: one CAS on the record's (state, seq)
 * pair, so exactly once and with no odd seqlock window). A winner killed
 * between the two leaves an ALLOCATED record with a GONE word: whoever
 * sees one finishes it (shl__frame_finish_all, run by the reaper when it
 * proves a death, and shl__frame_release_op); the pair CAS decides
 * between a late winner and a helper.
 */
#include "shm/frame.h"

#include "internal.h"
#include "shm/table.h"

void
shl__frame_activate(struct shl__frame *f, uint64_t gen)
{
    /* claimed and not yet published: nobody else may change it */
    atomic_store_explicit(&f->fword, SHL__FWORD(gen, SHL_FRAME_ACTIVE),
                          memory_order_relaxed);
}

bool
shl__frame_transition(struct shl__frame *f, uint64_t gen, uint32_t from,
                      uint32_t to)
{
    uint64_t expect = SHL__FWORD(gen, from);
    return atomic_compare_exchange_strong_explicit(
        &f->fword, &expect, SHL__FWORD(gen, to), memory_order_acq_rel,
        memory_order_acquire);
}

bool
shl__frame_finish(struct shl__frame *f, uint64_t gen)
{
    /* the pair first: if the record is recycled after this load, its
     * sequence moves and the CAS below fails */
    uint64_t pair = shl__rec_pair(&f->h);
    if ((uint32_t)pair != SHL__R_ALLOCATED ||
        atomic_load_explicit(&f->h.gen, memory_order_acquire) != gen ||
        atomic_load_explicit(&f->fword, memory_order_acquire) !=
            SHL__FWORD(gen, SHL__F_GONE))
        return false;
    return shl__rec_release_pair(&f->h, pair);
}

bool
shl__frame_retire(struct shl__seg *s, struct shl__frame *f, uint64_t gen,
                  uint32_t from)
{
    SHL__UNUSED(s);
    if (!shl__frame_transition(f, gen, from, SHL__F_GONE))
        return false;
    SHL_CRASH_POINT("frame.gone");
    (void)shl__frame_finish(f, gen);
    return true;
}

bool
shl__frame_mark_crashed(struct shl__frame *f, uint64_t gen)
{
    uint64_t w = atomic_load(&f->fword);
    for (;;) {
        uint32_t fs = SHL__FWORD_STATE(w);
        if (!SHL__FWORD_GEN_OK(w, gen) || fs == SHL__F_GONE ||
            fs == SHL_FRAME_CRASHED)
            return false;
        if (atomic_compare_exchange_weak(&f->fword, &w,
                                         SHL__FWORD(gen, SHL_FRAME_CRASHED)))
            return true;
    }
}

bool
shl__frame_remove(struct shl__seg *s, struct shl__frame *f, uint64_t g)
{
    SHL__UNUSED(s);
    uint64_t w = atomic_load_explicit(&f->fword, memory_order_acquire);
    while (SHL__FWORD_GEN_OK(w, g) && SHL__FWORD_STATE(w) != SHL__F_GONE) {
        if (atomic_compare_exchange_weak(&f->fword, &w,
                                         SHL__FWORD(g, SHL__F_GONE))) {
            SHL_CRASH_POINT("frame.gone");
            (void)shl__frame_finish(f, g);
            return true;
        }
    }
    return false;
}

uint32_t
shl__frame_release_op(struct shl__seg *s, uint32_t op_idx, uint64_t op_gen)
{
    uint32_t n = 0, hw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load_explicit(&f->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED)
            continue;
        uint64_t g = atomic_load_explicit(&f->h.gen, memory_order_acquire);
        uint32_t seq;
        if (!shl__seq_read_begin(&f->h, &seq))
            continue;
        bool mine = f->op_idx == op_idx && f->op_gen == op_gen;
        if (!shl__seq_read_ok(&f->h, seq) || !mine)
            continue;
        if (shl__frame_remove(s, f, g))
            n++;
        else
            (void)shl__frame_finish(f, g); /* a releaser died after GONE */
    }
    return n;
}

uint32_t
shl__frame_finish_all(struct shl__seg *s)
{
    uint32_t n = 0, hw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load_explicit(&f->h.state, memory_order_relaxed) !=
                SHL__R_ALLOCATED ||
            SHL__FWORD_STATE(atomic_load_explicit(
                &f->fword, memory_order_relaxed)) != SHL__F_GONE)
            continue;
        if (shl__frame_finish(f, atomic_load(&f->h.gen)))
            n++;
    }
    return n;
}
