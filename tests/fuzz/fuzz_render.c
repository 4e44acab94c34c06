/*
 * fuzz_render.c: log-line rendering (shl__event_render) of an event with
 * arbitrary fields, as the snapshotter meets them in the ring (kinds and
 * levels out of range included: the ring is shared memory).
 *
 * Input: kind, level, then wall_us, value, seq (8 bytes each), pid (4),
 * two length bytes, then op_id, a and b (b takes the rest). Every string
 * is handed with exactly its bytes (not NUL-terminated), so ASan sees an
 * over-read.
 * Invariants: a rendered event is exactly one line ending in '\n' in every
 * file; a trail line is one JSON object; a library event's trail line is
 * the JSON tree's bytes (shl__event_render_trail_tree).
 * SHL_FUZZ_RENDER_LINES=0 leaves out the one-line and no-NUL checks (known
 * broken: regress/render/newline-in-lib-message, nul-byte-in-log-line), so
 * a run can check the trail JSON further.
 * SHL_FUZZ_RENDER_NUL=1 puts a NUL after `a` (outside a_len), which hides
 * the known over-read of a trail event name (regress/render/
 * heap-overflow-trail-name-strlen) so a run can look further.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "files/opfiles.h"
#include "files/render.h"
#include "fuzz_common.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
take_u64(const uint8_t **d, size_t *n)
{
    uint64_t v = 0;
    size_t k = *n < 8 ? *n : 8;
    memcpy(&v, *d, k);
    *d += k;
    *n -= k;
    return v;
}

static char *
take_str(const uint8_t **d, size_t *n, size_t want, size_t *len, bool nul)
{
    size_t k = want < *n ? want : *n;
    char *p = calloc(1, k + nul > 0 ? k + nul : 1);
    if (p && k)
        memcpy(p, *d, k);
    *d += k;
    *n -= k;
    *len = k;
    return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 + 8 * 3 + 4 + 2)
        return 0;
    struct shl__event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = data[0] % (SHL__EV_KIND_MAX + 3);
    ev.level = data[1] % 6;
    data += 2;
    size -= 2;
    ev.wall_us = (int64_t)take_u64(&data, &size);
    /* mostly plausible times, so the rest of the line is reached */
    if (ev.wall_us & 1)
        ev.wall_us = 1700000000000000LL + (ev.wall_us % 100000000000000LL);
    ev.value = (int64_t)take_u64(&data, &size);
    ev.seq = take_u64(&data, &size);
    uint32_t pid;
    memcpy(&pid, data, 4);
    ev.pid = (int32_t)pid;
    data += 4;
    size -= 4;
    size_t lop = data[0], la = data[1];
    data += 2;
    size -= 2;
    size_t n_op, n_b;
    const char *nv = getenv("SHL_FUZZ_RENDER_NUL");
    bool nul = nv && nv[0] == '1';
    const char *lv = getenv("SHL_FUZZ_RENDER_LINES");
    bool lines = !(lv && lv[0] == '0');
    char *op = take_str(&data, &size, lop % 140, &n_op, false);
    char *a = take_str(&data, &size, la * 2, &ev.a_len, nul);
    char *b = take_str(&data, &size, size, &n_b, false);
    if (!op || !a || !b)
        goto out;
    /* op_id is a C string in the event: NUL-terminate a copy */
    char *opz = malloc(n_op + 1);
    if (!opz)
        goto out;
    memcpy(opz, op, n_op);
    opz[n_op] = 0;
    ev.op_id = opz;
    ev.a = a;
    ev.b = b;
    ev.b_len = n_b;

    for (int f = 0; f < SHL__NFILES; f++) {
        bool targeted = shl__event_targets(&ev, (enum shl__file)f);
        struct shl__sbuf sb;
        shl__sbuf_init(&sb);
        int rc = shl__event_render(&ev, (enum shl__file)f, &sb);
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "render -> %d",
                   rc);
        FUZZ_CHECK(targeted || rc != 0, "rendered to a file not targeted");
        if (rc == 0) {
            FUZZ_CHECK(sb.len > 0 && sb.p[sb.len - 1] == '\n',
                       "file %d: line does not end in a newline", f);
            FUZZ_CHECK(!lines ||
                           memchr(sb.p, '\n', sb.len) == sb.p + sb.len - 1,
                       "file %d: one event became several lines: %.*s", f,
                       (int)(sb.len > 300 ? 300 : sb.len), sb.p);
            FUZZ_CHECK(!lines || memchr(sb.p, 0, sb.len) == NULL,
                       "file %d: NUL byte in the line", f);
            if (f == SHL__FILE_TRAIL) {
                json_error_t err;
                json_t *j = json_loadb(sb.p, sb.len, 0, &err);
                FUZZ_CHECK(j && json_is_object(j),
                           "trail line is not a JSON object (%s): %.*s",
                           err.text, (int)(sb.len > 300 ? 300 : sb.len), sb.p);
                json_decref(j);
            }
        }
        shl__sbuf_fini(&sb);
    }
    /* the drainer's one-pass call lines are the same bytes as each file's
     * line rendered alone */
    if (ev.kind >= SHL__EV_CALL_STARTED && ev.kind <= SHL__EV_CALL_FAILED &&
        ev.level <= SHL_LOG_ERROR) {
        char iso[48];
        int iso_n = shl__format_iso(ev.wall_us, iso, sizeof(iso));
        if (iso_n > 0) {
            ev.iso = iso;
            ev.iso_len = (size_t)iso_n;
            struct shl__sbuf l1, t1, l2, t2;
            shl__sbuf_init(&l1);
            shl__sbuf_init(&t1);
            shl__sbuf_init(&l2);
            shl__sbuf_init(&t2);
            int r1 = shl__event_render(&ev, SHL__FILE_LOG, &l1);
            if (r1 == 0)
                r1 = shl__event_render(&ev, SHL__FILE_TRAIL, &t1);
            int r2 = shl__event_render_call(&ev, &l2, &t2);
            FUZZ_CHECK(r1 == r2, "render_call -> %d, render -> %d", r2, r1);
            FUZZ_CHECK(r1 != 0 || (l1.len == l2.len && t1.len == t2.len &&
                                   !memcmp(l1.p, l2.p, l1.len) &&
                                   !memcmp(t1.p, t2.p, t1.len)),
                       "render_call differs from render");
            shl__sbuf_fini(&l1);
            shl__sbuf_fini(&t1);
            shl__sbuf_fini(&l2);
            shl__sbuf_fini(&t2);
            ev.iso = NULL;
            ev.iso_len = 0;
        }
    }
    /* a library event's trail line: the direct path (when it takes it) is
     * the same bytes as the JSON tree's */
    if (ev.kind != SHL__EV_LOG && ev.kind != SHL__EV_DEBUG &&
        !(ev.kind >= SHL__EV_CALL_STARTED && ev.kind <= SHL__EV_CALL_FAILED)) {
        struct shl__sbuf t1, t2;
        shl__sbuf_init(&t1);
        shl__sbuf_init(&t2);
        int r1 = shl__event_render(&ev, SHL__FILE_TRAIL, &t1);
        int r2 = shl__event_render_trail_tree(&ev, &t2);
        FUZZ_CHECK(r1 == r2, "trail render -> %d, tree -> %d", r1, r2);
        FUZZ_CHECK(r1 != 0 ||
                       (t1.len == t2.len && !memcmp(t1.p, t2.p, t1.len)),
                   "trail line differs from the tree's: %.*s / %.*s",
                   (int)(t1.len > 300 ? 300 : t1.len), t1.p,
                   (int)(t2.len > 300 ? 300 : t2.len), t2.p);
        shl__sbuf_fini(&t1);
        shl__sbuf_fini(&t2);
    }
    struct shl__sbuf mb;
    shl__sbuf_init(&mb);
    (void)shl__event_message(&ev, &mb);
    shl__sbuf_fini(&mb);
    char path[4096];
    for (int f = 0; f < SHL__NFILES; f++)
        (void)shl__op_file_path("/base", ev.op_id, (enum shl__file)f, path,
                                sizeof(path));
    free(opz);
out:
    free(op);
    free(a);
    free(b);
    return 0;
}
