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

#endif /* SHL_FILES_RENDER_H */
