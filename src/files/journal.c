/*
 * journal.c: see journal.h.
 */
#include "files/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "internal.h"

/* Journal key of (operation, file). */
uint64_t
shl__journal_key(const char *op_id, enum shl__file f)
{
    return XXH3_64bits_withSeed(op_id, strlen(op_id), (uint64_t)f + 1);
}

/* Keep only the lines of b not found in the file fd from byte `from` on
 * (fd: the descriptor the batch's lines will be appended through, so the
 * file read is the file written, whether beside the operation or, after
 * it was archived, inside backup/; the caller keeps fd open): the
 * region a predecessor's write of this batch can have landed in (it
 * recorded `from`, the file's size before its write, in the journal; with
 * O_APPEND its write landed at or after it, whatever others appended
 * meanwhile). Lines are matched by a 64-bit hash of their whole text:
 * trail lines carry their segment-wide `seq`, log lines a microsecond
 * timestamp, so a line of another event never matches. */
int
shl__journal_dedupe(int fd, uint64_t from, struct shl__sbuf *b)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    size_t n = size > from ? size - (size_t)from : 0;
    char *win = malloc(n + 1);
    if (!win)
        return -ENOMEM;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, win + got, n - got, (off_t)(from + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = -errno;
            free(win);
            return rc;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    /* the region's lines, hashed into an open-addressing set */
    size_t lines = 0;
    for (size_t i = 0; i < got; i++)
        lines += win[i] == '\n';
    size_t cap = 64;
    while (cap < 2 * lines + 2)
        cap *= 2;
    uint64_t *set = calloc(cap, sizeof(*set));
    if (!set) {
        free(win);
        return -ENOMEM;
    }
    for (size_t i = 0; i < got;) {
        char *nl = memchr(win + i, '\n', got - i);
        if (!nl)
            break; /* a torn last line matches nothing */
        size_t len = (size_t)(nl - (win + i)) + 1;
        uint64_t hv = XXH3_64bits(win + i, len) | 1u;
        size_t j = hv & (cap - 1);
        while (set[j] && set[j] != hv)
            j = (j + 1) & (cap - 1);
        set[j] = hv;
        i += len;
    }
    /* A write cut by SIGKILL stops at a page boundary (the kernel checks
     * for a fatal signal between pages), leaving a torn line. If it is
     * still the file's end, the line it begins is completed instead of
     * written again. (If others appended after it meanwhile, the torn
     * piece stays and the whole line is written again.) */
    const char *frag = NULL;
    size_t frag_len = 0;
    if (got && win[got - 1] != '\n') {
        const char *last = memrchr(win, '\n', got);
        frag = last ? last + 1 : win;
        frag_len = (size_t)(win + got - frag);
    }
    size_t o = 0;
    for (size_t i = 0; i < b->len;) {
        char *nl = memchr(b->p + i, '\n', b->len - i);
        size_t len = nl ? (size_t)(nl - (b->p + i)) + 1 : b->len - i;
        uint64_t hv = XXH3_64bits(b->p + i, len) | 1u;
        size_t j = hv & (cap - 1);
        while (set[j] && set[j] != hv)
            j = (j + 1) & (cap - 1);
        if (!set[j]) {
            size_t skip = 0;
            if (frag_len && len > frag_len &&
                !memcmp(b->p + i, frag, frag_len)) {
                skip = frag_len; /* complete the torn line */
                frag_len = 0;
            }
            memmove(b->p + o, b->p + i + skip, len - skip);
            o += len - skip;
        }
        i += len;
    }
    b->len = o;
    b->p[o] = 0;
    free(set);
    free(win);
    return 0;
}

/* Where a redone batch's writes may have landed in file (op, f): the
 * journal's size for it, or UINT64_MAX when the journal does not name it
 * (the batch in flight wrote nothing there). A journal count out of range
 * (cannot happen unless the segment is damaged) makes the whole file the
 * region. */
uint64_t
shl__journal_from(const struct shl__hdr *h, uint64_t key)
{
    uint32_t jn = atomic_load_explicit(&h->ev_jn, memory_order_relaxed);
    if (jn > SHL__EV_JOURNAL)
        return 0;
    for (uint32_t i = 0; i < jn; i++)
        if (atomic_load_explicit(&h->ev_journal[i].key, memory_order_relaxed) ==
            key)
            return atomic_load_explicit(&h->ev_journal[i].pre_size,
                                        memory_order_relaxed);
    return UINT64_MAX;
}

/* Does the file end in a torn line? A writer killed inside write() (the
 * kernel stops at a page boundary) leaves one, and our first line would be
 * glued to it. A live writer inside a write that spans pages shows the
 * same for a moment (the size grows page by page), so a tail without its
 * newline is looked at again 1 ms later: torn only if nothing moved. */
bool
shl__journal_torn_tail(int fd, struct stat *st)
{
    /* the kernel's write loop works in page-aligned pieces of the file
     * and checks for a fatal signal between them: a cut ends at a multiple
     * of the page size, so no other size needs the read */
    char last = '\n';
    if (st->st_size <= 0 || st->st_size % 4096 != 0 ||
        pread(fd, &last, 1, st->st_size - 1) != 1 || last == '\n')
        return false;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    struct stat again;
    if (fstat(fd, &again) != 0 || again.st_size != st->st_size)
        return false;
    return pread(fd, &last, 1, st->st_size - 1) == 1 && last != '\n';
}
