/*
 * layout.h: every structure that lives in the shared-memory segment.
 *
 * The segment is an inter-process format. Nothing here is exposed in the
 * public header; a build whose layout differs is refused through the format
 * signature (shl__format_signature(), hashed from the sizes and offsets
 * below), not misread.
 *
 * Segment map (offsets in the header, each region cache-line aligned):
 *
 *   +---------------------------+  0
 *   | shl__hdr                  |  identity, capacities, defaults, clocks,
 *   |                           |  counters, epoch futex, the structure
 *   |                           |  mutex and its intent record
 *   +---------------------------+  off[SHL__T_PART]
 *   | participants  [cap]       |  shl__part, 192 B each
 *   +---------------------------+  off[SHL__T_OP]
 *   | operations    [cap]       |  shl__op
 *   +---------------------------+  off[SHL__T_FRAME]
 *   | call frames   [cap]       |  shl__frame
 *   +---------------------------+  off[SHL__T_RES]
 *   | temp resources[cap]       |  shl__res
 *   +---------------------------+  index_off
 *   | operation-id index        |  open addressing, XXH3_64 keys
 *   +---------------------------+  ev_off
 *   | event rings [ev_nrings]   |  shl__evring header (3 lines) + the
 *   |                           |  ring's records (events.c, drain.c)
 *   +---------------------------+  total_size
 *
 * Records refer to each other by (index, generation), never by pointer.
 *
 * Record lifecycle (shl__rec.state, published last with a release store):
 *
 *   FREE --claim (CAS)--> STARTING --fill, publish--> ALLOCATED
 *   ALLOCATED --free--> RECLAIMED --(reuse_after passed)--> claimable
 *
 * A claim bumps `gen`, so a reader holding (index, old gen) sees the record
 * change instead of reading someone else's data. STARTING carries the
 * creator's participant slot, so a creator killed mid-fill leaves a record
 * that the repair or the reaper can undo.
 *
 * Seqlock: every record's variable fields are written between two
 * increments of `seq` (odd while a writer is inside). Readers copy the record
 * and retry while `seq` was odd or changed; they never take a lock. Single
 * words that change after publication (a frame's state, a heartbeat, the
 * abort flag, an operation's state) are separate atomics written with one
 * store or CAS, outside the seqlock, so they stay readable after a death at
 * any instruction.
 *
 * Byte-range (OFD) locks on the segment's descriptor:
 *   byte SHL__LOCK_INIT            held by the creator during initialisation
 *   byte SHL__LOCK_SNAPSHOTTER     held by the snapshotter process
 *   byte SHL__LOCK_DRAIN           held by whoever drains the event rings
 *                                  or writes an event's lines directly
 *                                  (the snapshotter, or a producer whose
 *                                  ring is full)
 *   byte SHL__LOCK_JSON            held while one {opId}.operation.json is
 *                                  snapshotted and written (any process)
 *   byte SHL__LOCK_PART_BASE + i   held by the live owner of participant i
 * The kernel drops them when the owner dies: that is the proof of death.
 */
#ifndef SHL_LAYOUT_H
#define SHL_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "shmledger/shmledger.h"

#define SHL__CACHE_LINE 64
#define SHL__ALIGNED __attribute__((aligned(SHL__CACHE_LINE)))

#define SHL__MAGIC 0x3152474c44454c53ull /* "SLEDLGR1" little-endian */
#define SHL__VERSION_WORD(major, minor) (((uint32_t)(major) << 16) | (minor))
#define SHL__VERSION_MAJOR(w) ((w) >> 16)
#define SHL__FORMAT_MINOR 4

#define SHL__LOCK_INIT 0
#define SHL__LOCK_SNAPSHOTTER 1
#define SHL__LOCK_DRAIN 2
#define SHL__LOCK_JSON 3
#define SHL__LOCK_PART_BASE 4096

enum shl__table_id {
    SHL__T_PART = 0,
    SHL__T_OP = 1,
    SHL__T_FRAME = 2,
    SHL__T_RES = 3,
    SHL__NTABLES = 4,
};

enum shl__rec_state {
    SHL__R_FREE = 0,
    SHL__R_STARTING = 1,
    SHL__R_ALLOCATED = 2,
    SHL__R_RECLAIMED = 3,
};

#define SHL__NO_SLOT UINT32_MAX
#define SHL__F_GONE 0xffu
#define SHL__FWORD(gen, st) (((uint64_t)(gen) << 8) | (uint64_t)(st))
#define SHL__FWORD_GEN_OK(w, gen)                                              \
    (((w) >> 8) == ((uint64_t)(gen) & 0x00ffffffffffffffull))
#define SHL__FWORD_STATE(w) ((uint32_t)((w)&0xffu))
/* Bytes of an operation record's packed crashed call ids. */
#define SHL__CRASHED_BYTES 8192
/* Participants tracked in an operation's member bitmap. */
#define SHL__MAX_PARTICIPANTS 4096

/* Common head of every record (40 bytes, first cache line). `state` and
 * `seq` are adjacent and 8-byte aligned: a lock-free record (a frame) is
 * released by one 64-bit CAS on the pair (table.c, shl__rec_release_pair),
 * so the release has no odd-seqlock window and happens exactly once. */
struct shl__rec {
    _Atomic uint32_t state;     /* shl__rec_state; written last (release) */
    _Atomic uint32_t seq;       /* seqlock; odd while a writer is inside */
    _Atomic uint64_t gen;       /* bumped by every claim; never 0 in use */
    _Atomic int64_t reuse_after; /* mono ns; RECLAIMED until then */
    _Atomic uint32_t owner;     /* creator's participant slot (or NO_SLOT) */
    uint32_t pad0;
    _Atomic uint64_t owner_gen; /* generation of that participant slot */
};

/* A participant: one ledger handle of one process. Written by its owner
 * (heartbeat, fenced flag read) and by the repair/reaper under the mutex. */
struct shl__part {
    struct shl__rec h;
    _Atomic int64_t heartbeat_ns; /* owner: release store of CLOCK_MONOTONIC */
    int32_t pid;                  /* real pid of the owner */
    int32_t recorded_pid;         /* participantPid given at open */
    uint64_t start_time;          /* /proc/<pid>/stat starttime (ticks) */
    _Atomic uint32_t fenced;      /* set by a cleaner: declared crashed */
    uint32_t pad1;
    char id[SHL_PARTICIPANT_ID_MAX + 1];
    /* The membership doorbell (shl__part_ring): a futex word that others
     * increment when they join or leave an operation this participant is
     * in; its futex thread sleeps on it and on the epoch (futex_waitv). */
    _Atomic uint32_t bell;
    _Atomic uint32_t bell_waiters; /* futex threads asleep on `bell` */
    char pad2[40];
} SHL__ALIGNED;

/* An operation. Identity fields are written once under the seqlock at
 * creation; failure info under the seqlock by the one who fails it. */
struct shl__op {
    struct shl__rec h;
    _Atomic uint32_t op_state;    /* shl_op_state; single-word transitions */
    _Atomic uint32_t aborted;     /* abort flag */
    _Atomic uint64_t members[SHL__MAX_PARTICIPANTS / 64]; /* slots that
                                    joined (fetch_or on join, and on leave) */
    int64_t start_wall_us;
    int64_t detection_us;        /* 0 = null */
    int64_t removal_us;          /* 0 = null */
    uint64_t id_hash;            /* XXH3_64 of id */
    uint32_t initiator_slot;
    uint32_t has_description;
    uint64_t initiator_gen;
    _Atomic uint64_t coordinator; /* cleanup coordinator, then the
                                     archiver of the finished operation:
                                     (gen << 13) | (slot + 1), 0 = none;
                                     CAS to take */
    char id[SHL_OPERATION_ID_MAX + 1];
    char initiator[SHL_PARTICIPANT_ID_MAX + 1];
    char description[SHL_DESCRIPTION_MAX + 1];
    int64_t failed_at_us;
    uint32_t crashed_count;       /* ids stored in crashed[] */
    uint32_t crashed_total;       /* crashed calls of the failure, all of
                                     them (>= crashed_count) */
    char reason[SHL_REASON_MAX + 1];
    /* the crashed call ids, each NUL-terminated, packed one after the
     * other (shm/records.c): at least SHL__CRASHED_BYTES / 128 ids of the
     * longest kind, about 400 typical ones */
    char crashed[SHL__CRASHED_BYTES];
    /* Written by every call start/end: on their own cache line, so calls
     * do not invalidate the line every call reads (state, gen, op_state). */
    _Atomic uint64_t change_count SHL__ALIGNED; /* every change (snapshotter) */
    _Atomic int64_t last_heartbeat_ns; /* mono ns of the latest change */
    /* 1 once the archive of this finished operation was written (by the
     * one named in `coordinator`, its archiver, or by a reaper that took
     * over from a dead one): a failed or completed record is freed only
     * after that (crash/reaper.c), so a killed archiver loses nothing */
    _Atomic uint32_t archived;
} SHL__ALIGNED;

/* A call frame. Allocated lock-free by its owner (CAS claim), written once
 * under the seqlock, then only `fstate` changes (CAS), until freed. */
struct shl__frame {
    struct shl__rec h;
    /* (generation << 8) | frame state. Every transition is a CAS on the
     * whole word, so an actor holding an old generation can never change a
     * reused record. SHL__F_GONE: removed; its winner releases the record. */
    _Atomic uint64_t fword;
    uint32_t fail_on_crash;
    uint32_t pad1;
    uint32_t op_idx;
    uint32_t part_slot;
    uint64_t op_gen;
    uint64_t part_gen;
    int64_t start_wall_us;
    uint64_t session_id;
    int32_t pid;                  /* participantPid */
    uint32_t has_description;
    char call_id[SHL_CALL_ID_MAX + 1];
    char participant_id[SHL_PARTICIPANT_ID_MAX + 1];
    char description[SHL_DESCRIPTION_MAX + 1];
} SHL__ALIGNED;

/* A temp resource, created and freed under the structure mutex. */
struct shl__res {
    struct shl__rec h;
    uint32_t op_idx;
    uint32_t part_slot;
    uint64_t op_gen;
    int64_t registered_at_us;
    int32_t owner_pid;            /* participantPid of the registrant */
    uint32_t frame_ref;           /* CallFrame.resources: the frame index
                                     + 1 of the call it belongs to, 0 for
                                     the operation's own */
    uint64_t part_gen;            /* generation of the registrant's slot */
    uint64_t frame_gen;           /* generation of that frame */
    char path[SHL_PATH_MAX + 1];
} SHL__ALIGNED;

/* Operation-id index entry. key 0 = empty, 1 = tombstone, else the hash
 * with the low bit forced on (so it is never 0 or 1... see index.c). */
struct shl__index_ent {
    _Atomic uint64_t key;
    _Atomic uint32_t op_idx;
    uint32_t pad;
};

#define SHL__IDX_EMPTY 0ull
#define SHL__IDX_TOMB 1ull

/* The intent record: written under the mutex before a mutation, cleared
 * after it. What a repairing locker reads after EOWNERDEAD. */
enum shl__intent_kind {
    SHL__I_NONE = 0,
    SHL__I_ALLOC = 1,  /* claiming table[index]; gen = generation claimed */
    SHL__I_FREE = 2,   /* freeing table[index] of generation gen */
    SHL__I_FAIL = 3,   /* failing operation index (writing failure info) */
    SHL__I_CRASH = 4,  /* recording a crash in operation index (crashed ids,
                          detection time); the state is not rolled forward:
                          the next crash_op for the dead does that */
};

struct shl__intent {
    _Atomic uint32_t kind;
    uint32_t table;
    uint32_t index;
    uint32_t pad;
    uint64_t gen;
    char note[SHL_CALL_ID_MAX + 1]; /* I_FAIL: the crashed call id, so a
                                       roll-forward can record it */
};

/* The event rings (events.c: producers, drain.c: the consumer; ARCHITECTURE
 * §7.3). `ev_nrings` single-producer rings, each a header of three cache
 * lines followed by `ev_ring_bytes` (a power of two) of records. Positions
 * are byte offsets that grow without bound; data offset = pos & (bytes-1).
 *
 *  line 0, the owner's: `head` (release store after a record is filled: a
 *          dead producer's unfinished record is never published).
 *  line 1: `owner`: 0 free, else SHL__EVOWNER(slot, slot generation,
 *          thread index): CAS from 0 (or from a dead owner's word) to take
 *          the ring, store 0 to give it back.
 *  line 2, the drainer's (holder of OFD byte SHL__LOCK_DRAIN): `tail`
 *          (records before it are in the files) and `inflight` (the batch
 *          in flight ends there; see hdr->ev_jphase).
 */
#define SHL__EVOWNER(slot, gen, tix)                                           \
    ((1ull << 63) | (((uint64_t)(gen)&0xffffffull) << 32) |                    \
     (((uint64_t)(tix)&0xfffffull) << 12) | ((uint64_t)(slot)&0xfffu))
#define SHL__EVOWNER_SLOT(w) ((uint32_t)((w)&0xfffu))
#define SHL__EVOWNER_GEN(w) (((w) >> 32) & 0xffffffull)
#define SHL__EVOWNER_PART(w) ((w) & ~(0xfffffull << 12)) /* slot + gen */
struct shl__evring {
    _Atomic uint64_t head;      /* owner: release store */
    char pad0[56];
    _Atomic uint64_t owner SHL__ALIGNED;
    char pad1[56];
    _Atomic uint64_t tail SHL__ALIGNED;     /* drainer: release store */
    _Atomic uint64_t inflight;              /* drainer: see ev_jphase */
    /* A full ring's producer sleeps on `room` (a futex) after setting
     * `room_wait`; a drainer that moved this ring's tail bumps `room` and
     * wakes it only when room_wait is set (no syscall otherwise). */
    _Atomic uint32_t room;
    _Atomic uint32_t room_wait;
    char pad2[40];
} SHL__ALIGNED;

/* A record in a ring: this head, then the operation id (idlen bytes), text
 * a, text b, padded to 8 bytes. size 8-aligned, whole record; kind 0 is
 * padding up to the end of the ring's data (the next record starts at
 * offset 0). Written by the ring's owner before its release store of
 * head; read by the drainer after an acquire load of head. */
struct shl__evhdr {
    uint32_t size;
    uint8_t kind;    /* shl__ev_kind (render.h); 0 = padding */
    uint8_t level;   /* shl_log_level */
    uint8_t idlen;
    uint8_t pad;
    int32_t pid;     /* producer's real pid */
    uint16_t len_a;
    uint16_t len_b;
    int64_t wall_us; /* when the event happened */
    int64_t value;   /* duration ms, ... (per kind) */
};
#define SHL__EV_REC_MAX 4096 /* a longer record is written directly */
#define SHL__EV_RINGS_MAX 32

/* The drain journal: for the batch in flight, per (operation, file) it
 * writes, the file's size before the batch's write (drain.c). Written by
 * the drainer (holder of byte SHL__LOCK_DRAIN) while ev_jphase is IDLE;
 * read by a later drainer that finds ev_jphase WRITING. */
#define SHL__EV_JOURNAL 1024
struct shl__ev_jent {
    /* relaxed atomics: published by the release store of ev_jphase */
    _Atomic uint64_t key;      /* XXH3_64 of the operation id, mixed with
                                  the file */
    _Atomic uint64_t pre_size; /* st_size of the file before the batch */
};
enum shl__jphase {
    SHL__J_IDLE = 0,    /* no batch in flight (inflight words are stale) */
    SHL__J_WRITING = 1, /* journal and inflight words complete; the batch
                           [tail, inflight) of every ring may be partly in
                           the files: a successor redoes it */
    SHL__J_DONE = 2,    /* the batch is in the files; tails, counts and
                           ev_seq may still need moving (idempotent) */
};

struct shl__hdr {
    /* line 0: identity, written by the creator before `version` */
    uint64_t magic;
    _Atomic uint32_t version;  /* SHL__VERSION_WORD; stored LAST (release) */
    uint32_t hdr_size;
    uint64_t format_sig;
    uint64_t total_size;
    uint32_t owner_uid;
    uint32_t mode;
    uint64_t pidns_ino;        /* inode of /proc/self/ns/pid of creator */
    char pad0[8];

    /* line 1..: geometry */
    uint32_t cap[SHL__NTABLES];
    uint32_t stride[SHL__NTABLES];
    uint64_t off[SHL__NTABLES];
    uint64_t index_off;
    uint32_t index_cap;        /* power of two */
    uint32_t pad1;

    /* defaults and clocks */
    int64_t heartbeat_interval_ms;
    int64_t stale_threshold_ms;
    int64_t created_wall_us;
    int64_t created_mono_ns;   /* wall_us = created_wall_us +
                                  (mono - created_mono_ns) / 1000 */
    char boot_id[40];

    /* counters (atomic, any process) */
    _Atomic uint64_t lock_recoveries SHL__ALIGNED;
    _Atomic uint64_t crashes_detected;
    _Atomic uint64_t op_seq;
    _Atomic uint32_t hwm[SHL__NTABLES]; /* highest claimed index + 1 */
    _Atomic uint32_t poisoned;
    _Atomic uint32_t epoch SHL__ALIGNED; /* futex word: state/abort changes */
    _Atomic uint32_t epoch_waiters; /* futex threads inside FUTEX_WAIT: a bump
                                       skips the wake syscall when 0 */

    /* the structure mutex and what it protects */
    pthread_mutex_t mutex SHL__ALIGNED;
    struct shl__intent intent;
    uint32_t used[SHL__NTABLES]; /* ALLOCATED records of the mutex tables
                                    (PART, OP, RES); FRAME is not counted */

    /* event rings (events.c, drain.c, ARCHITECTURE §7.3). Geometry:
     * written once by the creator before `version`; read by everyone,
     * plain loads. */
    uint64_t ev_off SHL__ALIGNED; /* first ring */
    uint32_t ev_cap;              /* max_events as given (rounded up to a
                                     power of two); 0 = no rings */
    uint32_t ev_nrings;           /* rings, <= SHL__EV_RINGS_MAX */
    uint32_t ev_ring_bytes;       /* data bytes per ring, a power of two */
    uint32_t ev_ring_stride;      /* header + data, bytes */
    /* counters: fetch_add (relaxed) by any process, read by the tools */
    _Atomic uint64_t ev_fallback; /* events their producer wrote itself */
    _Atomic uint64_t ev_skipped;  /* records the drainer rejected as
                                     garbage */
    _Atomic uint64_t ev_dropped;  /* given up after write errors */
    _Atomic uint64_t ev_file_errors; /* failed file writes (any writer) */
    _Atomic uint64_t ev_unordered;   /* lines a producer wrote itself before
                                        its earlier ring records reached the
                                        files (a drainer stuck > 1 s) */
    /* Written only by the drainer (holder of byte SHL__LOCK_DRAIN). */
    _Atomic uint32_t ev_jphase;   /* shl__jphase; release stores */
    _Atomic uint32_t ev_jn;       /* journal entries in use */
    _Atomic uint64_t ev_seq;      /* trail seq of the next event drained */
    _Atomic uint64_t ev_jseq;     /* seq of the batch's first event */
    _Atomic uint64_t ev_jseq_end; /* ev_seq once the batch is done */
    struct shl__ev_jent ev_journal[SHL__EV_JOURNAL];
    _Atomic uint32_t ev_wake SHL__ALIGNED; /* futex: producers bump it
                                     (release) and FUTEX_WAKE every quarter
                                     ring, flushes
                                     every 10 ms; the holder's thread sleeps
                                     on it */
    _Atomic uint64_t snap_holder; /* who took the snapshotter role: 1 +
                                     (slot generation << 32 | slot); 0 none.
                                     A hint for tools, written after taking
                                     the OFD byte and cleared before
                                     releasing it; the lock is the truth */
} SHL__ALIGNED;

_Static_assert(sizeof(struct shl__part) == 192, "participant record size");
_Static_assert(sizeof(struct shl__frame) % SHL__CACHE_LINE == 0, "frame");
_Static_assert(sizeof(struct shl__res) % SHL__CACHE_LINE == 0, "res");
_Static_assert(sizeof(struct shl__op) % SHL__CACHE_LINE == 0, "op");
_Static_assert(sizeof(struct shl__hdr) % SHL__CACHE_LINE == 0, "hdr");
_Static_assert(sizeof(struct shl__rec) == 40, "record head");
_Static_assert(sizeof(struct shl__evring) == 3 * SHL__CACHE_LINE, "ring");
_Static_assert(sizeof(struct shl__evhdr) == 32, "event record head");

#endif /* SHL_LAYOUT_H */
