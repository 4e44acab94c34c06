/*
 * render.h: events, their text formats and the files they go to.
 *
 * An *event* is anything that ends up in an operation's files: a user log
 * line (log, debugLog, logMessage), a library event line (CALL_STARTED,
 * OPERATION_STATE_CHANGED, CRASH_DETECTED...) and the changes recorded in
 * the trail. Producers describe an event with a struct shl__event and hand
 * it to shl__event_post() (events.c), which appends it to the segment's
 * event ring; the snapshotter renders it into the files. When the ring
 * cannot take it (full, text too long, no ring) the producer renders and
 * writes it itself, with the same functions, so the text is identical
 * whoever writes it.
 *
 * Files (basePath-relative, as the original):
 *   {opId}.operation.log        "<ISO> [<LEVEL>] <message>\n"
 *   {opId}.operation.debug.log  "<ISO> <message>\n"
 *   {opId}_trail.jsonl          one JSON object per change event
 * Every append is one write() of whole lines on an O_APPEND descriptor, so
 * lines of concurrent writers never interleave inside a line.
 */
#ifndef SHL_FILES_RENDER_H
#define SHL_FILES_RENDER_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "objects.h"

/* Event kinds (stable: they are stored in the ring). */
enum shl__ev_kind {
    SHL__EV_NONE = 0,
    SHL__EV_LOG = 1,          /* a = message, level: user log line */
    SHL__EV_DEBUG = 2,        /* a = message: debug log only */
    SHL__EV_LIB = 3,          /* a = "NAME k=v ...", level: library line */
    SHL__EV_CALL_STARTED = 4, /* a = callId, b = participantId */
    SHL__EV_CALL_ENDED = 5,   /* a = callId, value = duration ms */
    SHL__EV_CALL_FAILED = 6,  /* a = callId, b = error, value = ms */
    SHL__EV_TRAIL = 7,        /* a = "NAME k=v ...": trail only, no log */
    SHL__EV_KIND_MAX = 7,
};

/* Target files of an event. */
enum shl__file {
    SHL__FILE_LOG = 0,
    SHL__FILE_DEBUG = 1,
    SHL__FILE_TRAIL = 2,
    SHL__NFILES = 3,
};

/* The process-local description of one event. Strings need not be
 * NUL-terminated (lengths given). */
struct shl__event {
    uint32_t kind;    /* shl__ev_kind */
    uint32_t level;   /* shl_log_level */
    int64_t wall_us;  /* when it happened */
    int64_t value;
    uint64_t seq;     /* ring position + 1; 0 when written directly */
    int32_t pid;      /* producer's real pid */
    const char *iso;  /* optional: wall_us already formatted (shl__format_iso
                         text of iso_len bytes); NULL = format it */
    size_t iso_len;
    const char *op_id;
    const char *a;
    size_t a_len;
    const char *b;
    size_t b_len;
};

/* A growable text buffer with a built-in first kilobyte. */
struct shl__sbuf {
    char *p;
    size_t len, cap;
    bool heap;
    char local[1024];
};
void shl__sbuf_init(struct shl__sbuf *b);
void shl__sbuf_reset(struct shl__sbuf *b);
void shl__sbuf_fini(struct shl__sbuf *b);
/* Grow b to hold extra more bytes and the NUL; 0 or -ENOMEM. */
int shl__sbuf_reserve_slow(struct shl__sbuf *b, size_t extra);
/* Append; returns 0 or -ENOMEM (the buffer is then unchanged). Inline: the
 * snapshotter renders every line of every event piece by piece. */
static inline int
shl__sbuf_add(struct shl__sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap && shl__sbuf_reserve_slow(b, n) != 0)
        return -ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}
int shl__sbuf_printf(struct shl__sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Does the event go to file f? */
bool shl__event_targets(const struct shl__event *ev, enum shl__file f);

/* Append the event's line for file f, with its trailing '\n', to b.
 * Log: "<ISO> [<LEVEL>] <message>", debug: "<ISO> <message>", trail: one
 * compact JSON object. Returns 0, -ENOMEM, -EINVAL (not a target). */
int shl__event_render(const struct shl__event *ev, enum shl__file f,
                      struct shl__sbuf *b);

/* Both lines of a call event (CALL_STARTED/ENDED/FAILED) at once: the
 * log line appended to `log`, the trail line to `trail`, the same bytes as
 * shl__event_render gives for each (the drainer's path: each field's text
 * is checked once for both). ev->iso must be set. Returns 0, -ENOMEM or
 * -EINVAL (not a call event, no iso); on -ENOMEM a buffer may hold a
 * complete line of the event (the caller drops the batch). */
int shl__event_render_call(const struct shl__event *ev, struct shl__sbuf *log,
                           struct shl__sbuf *trail);

/* The trail line of ev through the general path (a JSON tree dumped by
 * jansson), whatever fast path shl__event_render would take: the reference
 * the fast paths are checked against (tests, fuzz_render). Returns 0,
 * -ENOMEM or -EINVAL (not a trail event, or the time cannot be formatted). */
int shl__event_render_trail_tree(const struct shl__event *ev,
                                 struct shl__sbuf *b);
/* The message part of a log line ("CALL_STARTED callId=..."). */
int shl__event_message(const struct shl__event *ev, struct shl__sbuf *b);

/* Path of file f of operation op_id under base. Returns length or
 * -ENAMETOOLONG. */
int shl__op_file_path(const char *base, const char *op_id, enum shl__file f,
                      char *buf, size_t cap);

/* Open file f of op_id for appending (O_APPEND, 0600), for a writer of its
 * lines, deciding at write time where the line belongs:
 *   - the file beside the operation ({base}/{opId}...) when it exists;
 *   - else, when the operation was archived (backup/{opId}/ exists), its
 *     counterpart inside the archive folder (operation.log,
 *     operation.debug.log, trail.jsonl): lines posted after the archive
 *     (a member leaving after the failure, a CALL_ENDED racing it) go into
 *     the archive and nothing is recreated beside it;
 *   - else the file beside is created; if the archive folder appeared
 *     meanwhile, that new file is removed again and the archive's is used.
 *     A new trail file is reported through l's on_backup_created (l may be
 *     NULL).
 * Opened read-write: the drainer reads a file's tail (journal.c).
 * Returns the descriptor or -errno. */
int shl__op_file_open_append(shl_ledger *l, const char *base,
                             const char *op_id, enum shl__file f);

/* Append len bytes (whole lines) to file f of op_id: open as
 * shl__op_file_open_append, one write, close. Returns 0 or -errno. */
int shl__op_file_append(const char *base, const char *op_id,
                        enum shl__file f, const char *data, size_t len);
/* The same for ledger l (its on_backup_created hears of a new trail). */
int shl__op_file_append_l(shl_ledger *l, const char *base, const char *op_id,
                          enum shl__file f, const char *data, size_t len);

/* Write the event to its files directly (the producer's own path: no ring,
 * or the ring refused it). Errors are counted and reported through
 * on_log_line. Returns 0 or the first -errno. */
int shl__event_write_direct(shl_ledger *l, const struct shl__event *ev);

/* The same, appending each rendered line through `append` (ctx passed
 * back) instead of opening the file; NULL appends with
 * shl__op_file_append. */
typedef int (*shl__append_fn)(void *ctx, shl_ledger *l, const char *op_id,
                              enum shl__file f, const char *data, size_t len);
int shl__event_write_via(shl_ledger *l, const struct shl__event *ev,
                         shl__append_fn append, void *ctx);

/* Fire on_log_line for the event (if the ledger has the callback and the
 * event is a log line: not DEBUG or TRAIL). Runs on the calling thread. */
void shl__event_notify(shl_ledger *l, const struct shl__event *ev);

/* Count a file write error (the segment's ev_file_errors counter). */
void shl__count_file_error(shl_ledger *l);

/* Report a file error: a line to on_log_line and the write-error counter.
 * `what` names the operation ("append", "archive"...). */
void shl__file_error(shl_ledger *l, const char *what, const char *path,
                     int err);


#endif /* SHL_FILES_RENDER_H */
