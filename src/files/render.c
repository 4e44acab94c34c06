/*
 * render.c: the text of every line the library writes (log, debug log,
 * trail); opfiles.c writes them to an operation's files.
 *
 * Line formats are the original's (reference §1.8):
 *   operation log  "<ISO> [<LEVEL>] <message>"
 *   debug log      "<ISO> <message>"        (no callback, not mirrored)
 *   logMessage     "<elapsed> | " + 4 spaces per depth + "[<pid>] <msg>",
 *                  logged at INFO and printed bare to stdout
 * The ISO timestamp is shl__format_iso (local time, microseconds, offset),
 * taken when the event happened, not when the snapshotter writes it.
 *
 * Nothing here takes a lock or touches a file.
 */
#include "files/render.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files/json.h"
#include "internal.h"

/* ---- text buffer ---- */

void
shl__sbuf_init(struct shl__sbuf *b)
{
    b->p = b->local;
    b->len = 0;
    b->cap = sizeof(b->local);
    b->heap = false;
    b->local[0] = 0;
}

void
shl__sbuf_reset(struct shl__sbuf *b)
{
    b->len = 0;
    b->p[0] = 0;
}

void
shl__sbuf_fini(struct shl__sbuf *b)
{
    if (b->heap)
        free(b->p);
    shl__sbuf_init(b);
}

int
shl__sbuf_reserve_slow(struct shl__sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t nc = b->cap * 2;
    while (nc < b->len + extra + 1)
        nc *= 2;
    char *p = b->heap ? realloc(b->p, nc) : malloc(nc);
    if (!p)
        return -ENOMEM;
    if (!b->heap)
        memcpy(p, b->p, b->len + 1);
    b->p = p;
    b->cap = nc;
    b->heap = true;
    return 0;
}

int
shl__sbuf_printf(struct shl__sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= b->cap - b->len) {
        if (shl__sbuf_reserve_slow(b, (size_t)n) != 0) {
            b->p[b->len] = 0;
            return -ENOMEM;
        }
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

/* ---- levels ---- */

const char *
shl_log_level_name(shl_log_level level)
{
    switch (level) {
    case SHL_LOG_DEBUG:
        return "DEBUG";
    case SHL_LOG_INFO:
        return "INFO";
    case SHL_LOG_WARNING:
        return "WARNING";
    case SHL_LOG_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}

/* The level's name and its length, without strlen (the call lines'
 * fast path). */
static inline const char *
level_name_len(uint32_t level, size_t *len)
{
    static const char *const name[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
    static const unsigned char nlen[] = {5, 4, 7, 5};
    _Static_assert(SHL_LOG_DEBUG == 0 && SHL_LOG_INFO == 1 &&
                       SHL_LOG_WARNING == 2 && SHL_LOG_ERROR == 3,
                   "level table order");
    if (level > SHL_LOG_ERROR) {
        *len = 7;
        return "UNKNOWN";
    }
    *len = nlen[level];
    return name[level];
}

/* ---- rendering ---- */

bool
shl__event_targets(const struct shl__event *ev, enum shl__file f)
{
    switch (f) {
    case SHL__FILE_LOG:
        return ev->kind != SHL__EV_DEBUG && ev->kind != SHL__EV_TRAIL;
    case SHL__FILE_DEBUG:
        return ev->kind == SHL__EV_DEBUG;
    case SHL__FILE_TRAIL:
        return ev->kind != SHL__EV_LOG && ev->kind != SHL__EV_DEBUG;
    default:
        return false;
    }
}

/* Append a decimal integer (no printf: the snapshotter renders every line
 * of the log and the trail, and vfprintf dominated its profile). */
static int
add_int(struct shl__sbuf *b, long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
                                 : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    return shl__sbuf_add(b, tmp + i, sizeof(tmp) - i);
}

#define ADD_LIT(b, lit) shl__sbuf_add((b), (lit), sizeof(lit) - 1)

int
shl__event_message(const struct shl__event *ev, struct shl__sbuf *b)
{
    int rc;
    switch (ev->kind) {
    case SHL__EV_CALL_STARTED:
        rc = ADD_LIT(b, "CALL_STARTED callId=");
        if (!rc)
            rc = shl__sbuf_add(b, ev->a, ev->a_len);
        if (!rc)
            rc = ADD_LIT(b, " participant=");
        if (!rc)
            rc = shl__sbuf_add(b, ev->b, ev->b_len);
        return rc;
    case SHL__EV_CALL_ENDED:
    case SHL__EV_CALL_FAILED:
        rc = ev->kind == SHL__EV_CALL_ENDED ? ADD_LIT(b, "CALL_ENDED callId=")
                                            : ADD_LIT(b, "CALL_FAILED callId=");
        if (!rc)
            rc = shl__sbuf_add(b, ev->a, ev->a_len);
        if (!rc)
            rc = ADD_LIT(b, " duration=");
        if (!rc)
            rc = add_int(b, ev->value);
        if (!rc)
            rc = ADD_LIT(b, "ms");
        if (!rc && ev->kind == SHL__EV_CALL_FAILED) {
            rc = ADD_LIT(b, " error=");
            if (!rc)
                rc = shl__sbuf_add(b, ev->b, ev->b_len);
        }
        return rc;
    default:
        return shl__sbuf_add(b, ev->a ? ev->a : "", ev->a_len);
    }
}

/* Library event text "NAME k=v k2=v2 ...": NAME is the first word; a value
 * runs to the next " ident=" or the end; the keys error, reason and
 * message take the rest of the text (they are last in every line the
 * library writes, and may contain anything). One parser for both trail
 * paths (the JSON tree and the direct one), so they agree on every text. */
struct ev_field {
    size_t k0, klen; /* key; klen cut to 63 bytes, as the JSON key is */
    bool cut;        /* the key was longer */
    size_t v0, v1;   /* value [v0, v1) */
    bool num;        /* a "pid" that is a number: num_v */
    long long num_v;
};

static size_t
event_name_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != ' ')
        i++;
    return i;
}

/* The next field at or after *i (past NAME at first); false when there is
 * none (the end, or text that is not key=value: the message keeps it). */
static bool
next_event_field(const char *s, size_t n, size_t *ip, struct ev_field *f)
{
    size_t i = *ip;
    if (i >= n)
        return false;
    while (i < n && s[i] == ' ')
        i++;
    size_t k0 = i;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
        i++;
    if (i >= n || s[i] != '=' || i == k0)
        return false;
    size_t klen = i - k0;
    size_t v0 = ++i;
    bool rest = (klen == 5 && !memcmp(s + k0, "error", 5)) ||
                (klen == 6 && !memcmp(s + k0, "reason", 6)) ||
                (klen == 7 && !memcmp(s + k0, "message", 7));
    size_t v1 = n;
    if (!rest) {
        for (size_t j = v0; j < n; j++) {
            if (s[j] != ' ')
                continue;
            size_t t = j + 1;
            while (t < n && (isalnum((unsigned char)s[t]) || s[t] == '_'))
                t++;
            if (t < n && s[t] == '=' && t > j + 1) {
                v1 = j;
                break;
            }
        }
    }
    f->k0 = k0;
    f->cut = klen > 63;
    f->klen = f->cut ? 63 : klen;
    f->v0 = v0;
    f->v1 = v1;
    /* a pid is a number in every trail line (the producer's "pid" of
     * the other events is one) */
    bool num = klen == 3 && !memcmp(s + k0, "pid", 3) && v1 > v0 &&
               v1 - v0 < 12;
    bool neg = num && s[v0] == '-';
    long long pid = 0;
    /* parsed within [v0, v1): s is not NUL-terminated (no strtoll) */
    for (size_t j = v0 + neg; num && j < v1; j++) {
        num = isdigit((unsigned char)s[j]);
        pid = pid * 10 + (s[j] - '0');
    }
    f->num = num && v1 > v0 + neg;
    f->num_v = neg ? -pid : pid;
    *ip = v1;
    return true;
}

static json_t *jstrn(const char *s, size_t n);

/* Add the "key": value pairs of s to obj; returns NAME's length. */
static size_t
parse_event_fields(json_t *obj, const char *s, size_t n)
{
    size_t name_len = event_name_len(s, n);
    size_t i = name_len;
    struct ev_field f;
    while (next_event_field(s, n, &i, &f)) {
        char key[64];
        memcpy(key, s + f.k0, f.klen);
        key[f.klen] = 0;
        json_t *v = f.num ? json_integer(f.num_v)
                          : jstrn(s + f.v0, f.v1 - f.v0);
        if (v)
            json_object_set_new(obj, key, v);
    }
    return name_len;
}

/* ---- call events, rendered with a cursor ----
 *
 * Call events are most of what the snapshotter writes (four lines per call
 * pair). Their lines are built in place: the room for the longest possible
 * line is reserved once, then pieces are copied without a bounds check and
 * a NUL store each (that bookkeeping was a third of the consumer's time).
 * The output is byte for byte what the general path writes. */

static const char digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline char *
put_int(char *p, long long v)
{
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
                                 : (unsigned long long)v;
    if (v < 0)
        *p++ = '-';
    char tmp[24];
    char *e = tmp + sizeof(tmp), *q = e;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--q = digits2[d + 1];
        *--q = digits2[d];
    }
    if (u >= 10) {
        unsigned d = (unsigned)u * 2;
        *--q = digits2[d + 1];
        *--q = digits2[d];
    } else {
        *--q = (char)('0' + u);
    }
    memcpy(p, q, (size_t)(e - q));
    return p + (e - q);
}

static inline char *
put_mem(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put_mem((p), (lit), sizeof(lit) - 1)

/* ---- plain text, checked a word at a time ----
 *
 * Almost every field is plain printable ASCII (ids are validated ASCII,
 * error texts usually are): then the log text and the JSON string body are
 * the bytes themselves, and one memcpy writes them. The checks are exact
 * (a byte-wise classic: "has a byte less than n" / "has a zero byte"), so
 * any other byte sends the text to the escaping paths below, unchanged. */

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t
load8(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

/* Non-zero when a byte of w is < 0x20, 0x7f, or >= 0x80 (not log-plain). */
static inline uint64_t
word_not_logplain(uint64_t w)
{
    uint64_t lt20 = (w - ONES * 0x20) & ~w & HIGHS;
    uint64_t ge7f = ((w + ONES * (0x7f - 0x7e)) | w) & HIGHS;
    return lt20 | ge7f;
}

static inline uint64_t
haszero(uint64_t v)
{
    return (v - ONES) & ~v & HIGHS;
}

/* Non-zero when a byte of w is not plain in both renderings: not
 * log-plain, or '"' or '\\' (escaped in JSON). */
static inline uint64_t
word_not_plain(uint64_t w)
{
    return word_not_logplain(w) | haszero(w ^ (ONES * '"')) |
           haszero(w ^ (ONES * '\\'));
}

static inline bool
byte_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Length of the leading run of s[0..n) that is plain in both the log and
 * the JSON rendering (printable ASCII other than '"' and '\\'). */
static inline size_t
plain_prefix(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (word_not_plain(load8(s + i)))
            break;
    while (i < n && byte_plain((unsigned char)s[i]))
        i++;
    return i;
}

/* The body of a JSON string (no quotes; escaping path); room for 6 bytes
 * per input byte.
 * Invalid UTF-8 is written as U+FFFD (3 bytes per bad byte), so a line is
 * always valid JSON whatever a participant passed. */
static char *
put_json_body(char *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || c == 0) {
            size_t k = shl__utf8_seq((const unsigned char *)s + i, n - i);
            if (k) {
                i += k;
                continue;
            }
            p = put_mem(p, s + run, i - run);
            p = put_mem(p, "\xef\xbf\xbd", 3);
            run = ++i;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        p = put_mem(p, s + run, i - run);
        *p++ = '\\';
        if (c == '"' || c == '\\') {
            *p++ = (char)c;
        } else if (c == '\n') {
            *p++ = 'n';
        } else if (c == '\t') {
            *p++ = 't';
        } else {
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
        run = ++i;
    }
    return put_mem(p, s + run, n - run);
}

/* A JSON string of s whose first `plain` bytes are known plain: one copy
 * when all are, else the escaping path from the first other byte on (it
 * treats bytes one at a time or as whole UTF-8 sequences starting at a
 * non-ASCII byte, so starting it past a plain ASCII run gives the same
 * bytes as over the whole text). */
static inline char *
put_json_k(char *p, const char *s, size_t n, size_t plain)
{
    *p++ = '"';
    memcpy(p, s, plain);
    p += plain;
    if (plain != n)
        p = put_json_body(p, s + plain, n - plain);
    *p++ = '"';
    return p;
}


/* Log-line-safe text of s whose first `plain` bytes are printable ASCII:
 * one copy when all are, else shl__logsafe from the first other byte on
 * (byte-wise over ASCII: the same bytes as over the whole text). Room for
 * 4 bytes per input byte. */
static inline char *
put_log_k(char *p, const char *s, size_t n, size_t plain)
{
    memcpy(p, s, plain);
    p += plain;
    if (plain == n)
        return p;
    return p + shl__logsafe(s + plain, n - plain, p);
}


/* A JSON string of participant text: invalid UTF-8 becomes U+FFFD (jansson
 * refuses it, and the key would be missing). */
static json_t *
jstrn(const char *s, size_t n)
{
    if (!s)
        return json_string("");
    if (shl__utf8_valid(s, n))
        return json_stringn(s, n);
    char *tmp = malloc(3 * n + 1);
    if (!tmp)
        return NULL;
    size_t m = shl__utf8_fix(s, n, tmp);
    json_t *v = jstrn(tmp, m);
    free(tmp);
    return v;
}

static bool
is_call_event(const struct shl__event *ev)
{
    return ev->kind == SHL__EV_CALL_STARTED || ev->kind == SHL__EV_CALL_ENDED ||
           ev->kind == SHL__EV_CALL_FAILED;
}

/* Reserve room for a call event's line: fixed text, the timestamp, three
 * integers, and both fields escaped at worst. Returns the cursor. */
static char *
call_line_begin(struct shl__sbuf *b, size_t iso_len,
                const struct shl__event *ev)
{
    size_t need = 256 + iso_len + 6 * (ev->a_len + ev->b_len);
    if (b->len + need + 1 > b->cap && shl__sbuf_reserve_slow(b, need) != 0)
        return NULL;
    return b->p + b->len;
}

static void
call_line_end(struct shl__sbuf *b, char *p)
{
    *p = 0;
    b->len = (size_t)(p - b->p);
}

/* The plain-prefix lengths of a call event's two fields (plain_prefix):
 * computed once, used by both of its lines. */
struct call_plain {
    size_t a, b;
};

static inline struct call_plain
call_plain_of(const struct shl__event *ev)
{
    struct call_plain k = {plain_prefix(ev->a, ev->a_len), 0};
    if (ev->kind != SHL__EV_CALL_ENDED)
        k.b = plain_prefix(ev->b, ev->b_len);
    return k;
}

/* "<ISO> [<LEVEL>] CALL_..." for the operation log. */
static int
render_log_call(const struct shl__event *ev, const char *iso, size_t iso_len,
                struct call_plain k, struct shl__sbuf *b)
{
    char *p = call_line_begin(b, iso_len, ev);
    if (!p)
        return -ENOMEM;
    size_t lvl_len;
    const char *lvl = level_name_len(ev->level, &lvl_len);
    p = put_mem(p, iso, iso_len);
    *p++ = ' ';
    *p++ = '[';
    p = put_mem(p, lvl, lvl_len);
    *p++ = ']';
    *p++ = ' ';
    if (ev->kind == SHL__EV_CALL_STARTED) {
        p = PUT_LIT(p, "CALL_STARTED callId=");
        p = put_log_k(p, ev->a, ev->a_len, k.a);
        p = PUT_LIT(p, " participant=");
        p = put_log_k(p, ev->b, ev->b_len, k.b);
    } else {
        p = ev->kind == SHL__EV_CALL_ENDED ? PUT_LIT(p, "CALL_ENDED callId=")
                                           : PUT_LIT(p, "CALL_FAILED callId=");
        p = put_log_k(p, ev->a, ev->a_len, k.a);
        p = PUT_LIT(p, " duration=");
        p = put_int(p, ev->value);
        *p++ = 'm';
        *p++ = 's';
        if (ev->kind == SHL__EV_CALL_FAILED) {
            p = PUT_LIT(p, " error=");
            p = put_log_k(p, ev->b, ev->b_len, k.b);
        }
    }
    *p++ = '\n';
    call_line_end(b, p);
    return 0;
}

/* The head both hand-written trail lines share: {"seq":N,"ts":"ISO
 * (seq only when numbered), the timestamp's closing quote left to the
 * caller. */
static inline char *
put_trail_head(char *p, const struct shl__event *ev, const char *iso,
               size_t iso_len)
{
    *p++ = '{';
    if (ev->seq) {
        p = PUT_LIT(p, "\"seq\":");
        p = put_int(p, (long long)ev->seq);
        *p++ = ',';
    }
    p = PUT_LIT(p, "\"ts\":\"");
    return put_mem(p, iso, iso_len);
}

/* The call events are most of the trail: written by hand (same keys and
 * order as the general path below), without building a JSON tree. Control
 * characters and quotes are escaped; other bytes pass as they are, like
 * jansson does for valid UTF-8 (the ids are ASCII by validation). */
static int
render_trail_call(const struct shl__event *ev, const char *iso,
                  size_t iso_len, struct call_plain k, struct shl__sbuf *b)
{
    char *p = call_line_begin(b, iso_len, ev);
    if (!p)
        return -ENOMEM;
    p = put_trail_head(p, ev, iso, iso_len);
    size_t lvl_len;
    const char *lvl = level_name_len(ev->level, &lvl_len);
    if (ev->kind == SHL__EV_CALL_STARTED)
        p = PUT_LIT(p, "\",\"event\":\"CALL_STARTED\",\"level\":\"");
    else if (ev->kind == SHL__EV_CALL_ENDED)
        p = PUT_LIT(p, "\",\"event\":\"CALL_ENDED\",\"level\":\"");
    else
        p = PUT_LIT(p, "\",\"event\":\"CALL_FAILED\",\"level\":\"");
    p = put_mem(p, lvl, lvl_len);
    p = PUT_LIT(p, "\",\"pid\":");
    p = put_int(p, ev->pid);
    p = PUT_LIT(p, ",\"callId\":");
    p = put_json_k(p, ev->a, ev->a_len, k.a);
    if (ev->kind == SHL__EV_CALL_STARTED) {
        p = PUT_LIT(p, ",\"participantId\":");
        p = put_json_k(p, ev->b, ev->b_len, k.b);
    } else {
        p = PUT_LIT(p, ",\"durationMs\":");
        p = put_int(p, ev->value);
        if (ev->kind == SHL__EV_CALL_FAILED) {
            p = PUT_LIT(p, ",\"error\":");
            p = put_json_k(p, ev->b, ev->b_len, k.b);
        }
    }
    *p++ = '}';
    *p++ = '\n';
    call_line_end(b, p);
    return 0;
}

int
shl__event_render_call(const struct shl__event *ev, struct shl__sbuf *log,
                       struct shl__sbuf *trail)
{
    if (!is_call_event(ev) || !ev->iso)
        return -EINVAL;
    struct call_plain k = call_plain_of(ev);
    int rc = render_log_call(ev, ev->iso, ev->iso_len, k, log);
    if (rc == 0)
        rc = render_trail_call(ev, ev->iso, ev->iso_len, k, trail);
    return rc;
}

/* A library event's trail line written directly, without a JSON tree: the
 * same bytes as the tree path (render_trail_tree) gives, for the texts it
 * can tell apart cheaply: every byte plain (printable ASCII other than '"'
 * and '\\': then jansson writes each string as it is), at most 8 fields,
 * keys no longer than the tree's, none repeated and none of the line's own
 * (seq, ts, event, level, message); a "pid" field takes the place of the
 * producer's pid, as json_object_update does. Everything else returns 1
 * and goes through the tree. Returns 0, 1 or -ENOMEM.
 *
 * Why: PARTICIPANT_JOINED/LEFT and the other library lines went through
 * jansson (two objects, a dump, ~30,000 instructions a line), which made
 * the drainer slower than a thread joining and leaving flat out: the ring
 * filled and the joiner waited for it (Paths/JoinLeave). */
#define FAST_FIELDS 8

static int
render_trail_lib(const struct shl__event *ev, const char *iso, size_t iso_len,
                 struct shl__sbuf *b)
{
    const char *s = ev->a;
    size_t n = ev->a_len;
    if (!s || plain_prefix(s, n) != n || plain_prefix(iso, iso_len) != iso_len)
        return 1;
    size_t name_len = event_name_len(s, n);
    struct ev_field f[FAST_FIELDS];
    size_t nf = 0, i = name_len;
    int pid_at = -1;
    struct ev_field t;
    while (next_event_field(s, n, &i, &t)) {
        if (nf == FAST_FIELDS || t.cut)
            return 1;
        const char *k = s + t.k0;
        switch (t.klen) {
        case 2:
            if (!memcmp(k, "ts", 2))
                return 1;
            break;
        case 3:
            if (!memcmp(k, "seq", 3))
                return 1;
            if (!memcmp(k, "pid", 3)) {
                if (pid_at >= 0)
                    return 1;
                pid_at = (int)nf;
            }
            break;
        case 5:
            if (!memcmp(k, "event", 5) || !memcmp(k, "level", 5))
                return 1;
            break;
        case 7:
            if (!memcmp(k, "message", 7))
                return 1;
            break;
        default:
            break;
        }
        for (size_t j = 0; j < nf; j++)
            if (f[j].klen == t.klen && !memcmp(s + f[j].k0, k, t.klen))
                return 1;
        f[nf++] = t;
    }
    /* fixed text and three integers, the timestamp, NAME, every key and
     * value (each within s) with their quotes, and the message */
    size_t need = 160 + iso_len + 3 * n + 8 * nf;
    if (b->len + need + 1 > b->cap && shl__sbuf_reserve_slow(b, need) != 0)
        return -ENOMEM;
    char *p = b->p + b->len;
    p = put_trail_head(p, ev, iso, iso_len);
    size_t lvl_len;
    const char *lvl = level_name_len(ev->level, &lvl_len);
    p = PUT_LIT(p, "\",\"event\":\"");
    p = put_mem(p, s, name_len);
    p = PUT_LIT(p, "\",\"level\":\"");
    p = put_mem(p, lvl, lvl_len);
    p = PUT_LIT(p, "\",\"pid\":");
    if (pid_at < 0) {
        p = put_int(p, ev->pid);
    } else if (f[pid_at].num) {
        p = put_int(p, f[pid_at].num_v);
    } else {
        *p++ = '"';
        p = put_mem(p, s + f[pid_at].v0, f[pid_at].v1 - f[pid_at].v0);
        *p++ = '"';
    }
    for (size_t j = 0; j < nf; j++) {
        if ((int)j == pid_at)
            continue;
        *p++ = ',';
        *p++ = '"';
        p = put_mem(p, s + f[j].k0, f[j].klen);
        p = PUT_LIT(p, "\":\"");
        p = put_mem(p, s + f[j].v0, f[j].v1 - f[j].v0);
        *p++ = '"';
    }
    p = PUT_LIT(p, ",\"message\":\"");
    p = put_mem(p, s, n);
    p = PUT_LIT(p, "\"}\n");
    *p = 0;
    b->len = (size_t)(p - b->p);
    return 0;
}

/* The trail line through a JSON tree (jansson): any event, any text. */
static int
render_trail_tree(const struct shl__event *ev, const char *iso,
                  struct shl__sbuf *b)
{
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    if (ev->seq)
        json_object_set_new(o, "seq", json_integer((json_int_t)ev->seq));
    json_object_set_new(o, "ts", json_string(iso));
    json_t *fields = json_object();
    const char *name = NULL;
    size_t name_len = 0;
    switch (ev->kind) {
    case SHL__EV_CALL_STARTED:
        name = "CALL_STARTED";
        json_object_set_new(fields, "callId", jstrn(ev->a, ev->a_len));
        json_object_set_new(fields, "participantId", jstrn(ev->b, ev->b_len));
        break;
    case SHL__EV_CALL_ENDED:
        name = "CALL_ENDED";
        json_object_set_new(fields, "callId", jstrn(ev->a, ev->a_len));
        json_object_set_new(fields, "durationMs", json_integer(ev->value));
        break;
    case SHL__EV_CALL_FAILED:
        name = "CALL_FAILED";
        json_object_set_new(fields, "callId", jstrn(ev->a, ev->a_len));
        json_object_set_new(fields, "durationMs", json_integer(ev->value));
        json_object_set_new(fields, "error", jstrn(ev->b, ev->b_len));
        break;
    default:
        name = ev->a;
        name_len = parse_event_fields(fields, ev->a, ev->a_len);
        json_object_set_new(fields, "message", jstrn(ev->a, ev->a_len));
        break;
    }
    /* a library event's name is the first word of its text (ev->a is not
     * NUL-terminated: never read it as a C string) */
    json_object_set_new(o, "event", name == ev->a ? jstrn(ev->a, name_len)
                                                   : json_string(name));
    json_object_set_new(o, "level",
                        json_string(shl_log_level_name(ev->level)));
    json_object_set_new(o, "pid", json_integer(ev->pid));
    if (fields)
        json_object_update(o, fields);
    json_decref(fields);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return -ENOMEM;
    int rc = shl__sbuf_add(b, text, strlen(text));
    free(text);
    if (rc == 0)
        rc = shl__sbuf_add(b, "\n", 1);
    return rc;
}

/* The timestamp of ev's lines: ev->iso, or formatted into buf. */
static const char *
event_iso(const struct shl__event *ev, char *buf, size_t cap, size_t *len)
{
    if (ev->iso) {
        *len = ev->iso_len;
        return ev->iso;
    }
    int k = shl__format_iso(ev->wall_us, buf, cap);
    if (k < 0)
        return NULL;
    *len = (size_t)k;
    return buf;
}

static int
render_trail(const struct shl__event *ev, struct shl__sbuf *b)
{
    char buf[48];
    size_t iso_len;
    const char *iso = event_iso(ev, buf, sizeof(buf), &iso_len);
    if (!iso)
        return -EINVAL;
    if (is_call_event(ev))
        return render_trail_call(ev, iso, iso_len, call_plain_of(ev), b);
    int rc = render_trail_lib(ev, iso, iso_len, b);
    if (rc <= 0)
        return rc;
    return render_trail_tree(ev, iso, b);
}

int
shl__event_render_trail_tree(const struct shl__event *ev,
                             struct shl__sbuf *b)
{
    if (!shl__event_targets(ev, SHL__FILE_TRAIL))
        return -EINVAL;
    char buf[48];
    size_t iso_len;
    const char *iso = event_iso(ev, buf, sizeof(buf), &iso_len);
    if (!iso)
        return -EINVAL;
    return render_trail_tree(ev, iso, b);
}

/* Make b[start..] log-line-safe in place (a message can hold anything a
 * participant passed: a newline would forge a second line). */
static int
make_logsafe(struct shl__sbuf *b, size_t start)
{
    size_t n = b->len - start;
    const unsigned char *p = (const unsigned char *)b->p + start;
    size_t i = 0;
    for (; i < n; i++)
        if (p[i] < 0x20 || p[i] >= 0x7f)
            break;
    if (i == n)
        return 0; /* plain printable ASCII: the usual case */
    char *tmp = malloc(n ? n : 1);
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, b->p + start, n);
    b->len = start;
    int rc = 0;
    if (b->len + 4 * n + 1 > b->cap)
        rc = shl__sbuf_reserve_slow(b, 4 * n + 1);
    if (rc == 0)
        b->len += shl__logsafe(tmp, n, b->p + b->len);
    free(tmp);
    return rc;
}

int
shl__event_render(const struct shl__event *ev, enum shl__file f,
                  struct shl__sbuf *b)
{
    if (!shl__event_targets(ev, f))
        return -EINVAL;
    if (f == SHL__FILE_TRAIL)
        return render_trail(ev, b);
    char buf[48];
    const char *iso = ev->iso;
    size_t n = ev->iso_len;
    if (!iso) {
        int k = shl__format_iso(ev->wall_us, buf, sizeof(buf));
        if (k < 0)
            return -EINVAL;
        iso = buf;
        n = (size_t)k;
    }
    if (f == SHL__FILE_LOG && is_call_event(ev))
        return render_log_call(ev, iso, n, call_plain_of(ev), b);
    int rc = shl__sbuf_add(b, iso, n);
    if (rc == 0 && f == SHL__FILE_DEBUG)
        rc = ADD_LIT(b, " ");
    else if (rc == 0) {
        const char *lvl = shl_log_level_name(ev->level);
        rc = ADD_LIT(b, " [");
        if (rc == 0)
            rc = shl__sbuf_add(b, lvl, strlen(lvl));
        if (rc == 0)
            rc = ADD_LIT(b, "] ");
    }
    size_t start = b->len;
    if (rc == 0)
        rc = shl__event_message(ev, b);
    if (rc == 0)
        rc = make_logsafe(b, start);
    if (rc == 0)
        rc = shl__sbuf_add(b, "\n", 1);
    return rc;
}
