/*
 * test_render.c: the call lines' fast paths (render.c) give exactly the
 * bytes of the escaping rules (ARCHITECTURE §7.2) whatever the fields hold:
 * plain printable ASCII is copied whole (checked 8 bytes at a time), any
 * other byte anywhere in a field sends it through the escaping path. Each
 * field is swept with one special byte at every position of a text longer
 * than two words, against references built here from the rules
 * (shl__logsafe for the log, the JSON rules below for the trail), and
 * shl__event_render_call (both lines in one pass) must equal
 * shl__event_render of each file.
 * Library event lines ("NAME k=v ...") written without a JSON tree give
 * the bytes of the tree path (shl__event_render_trail_tree), and every
 * text the direct path cannot handle goes through the tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files/render.h"
#include "internal.h"
#include "shl_test.h"

static const char *const level_name[] = {"DEBUG", "INFO", "WARNING",
                                         "ERROR"};

/* Reference JSON string body: valid UTF-8 as it is, an invalid byte as
 * U+FFFD, '"' '\\' '\n' '\t' as two-character escapes, other controls as
 * \u00XX. */
static void
ref_json(struct shl__sbuf *b, const char *s, size_t n)
{
    shl__sbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || c == 0) {
            size_t k = shl__utf8_seq((const unsigned char *)s + i, n - i);
            if (k) {
                shl__sbuf_add(b, s + i, k);
                i += k;
            } else {
                shl__sbuf_add(b, "\xef\xbf\xbd", 3);
                i++;
            }
            continue;
        }
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof(esc), "\\n");
        else if (c == '\t')
            snprintf(esc, sizeof(esc), "\\t");
        else if (c < 0x20)
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        else
            snprintf(esc, sizeof(esc), "%c", c);
        shl__sbuf_add(b, esc, strlen(esc));
        i++;
    }
    shl__sbuf_add(b, "\"", 1);
}

static void
ref_log(struct shl__sbuf *b, const char *s, size_t n)
{
    char *tmp = malloc(4 * n + 1);
    assert_non_null(tmp);
    size_t m = shl__logsafe(s, n, tmp);
    shl__sbuf_add(b, tmp, m);
    free(tmp);
}

/* Both reference lines of a call event. */
static void
ref_lines(const struct shl__event *ev, struct shl__sbuf *log,
          struct shl__sbuf *trail)
{
    const char *name = ev->kind == SHL__EV_CALL_STARTED ? "CALL_STARTED"
                       : ev->kind == SHL__EV_CALL_ENDED ? "CALL_ENDED"
                                                         : "CALL_FAILED";
    const char *lvl = level_name[ev->level];
    shl__sbuf_printf(log, "%.*s [%s] %s callId=", (int)ev->iso_len, ev->iso,
                     lvl, name);
    ref_log(log, ev->a, ev->a_len);
    if (ev->kind == SHL__EV_CALL_STARTED) {
        shl__sbuf_printf(log, " participant=");
        ref_log(log, ev->b, ev->b_len);
    } else {
        shl__sbuf_printf(log, " duration=%lldms", (long long)ev->value);
        if (ev->kind == SHL__EV_CALL_FAILED) {
            shl__sbuf_printf(log, " error=");
            ref_log(log, ev->b, ev->b_len);
        }
    }
    shl__sbuf_add(log, "\n", 1);

    shl__sbuf_printf(trail,
                     "{\"seq\":%llu,\"ts\":\"%.*s\",\"event\":\"%s\","
                     "\"level\":\"%s\",\"pid\":%d,\"callId\":",
                     (unsigned long long)ev->seq, (int)ev->iso_len, ev->iso,
                     name, lvl, (int)ev->pid);
    ref_json(trail, ev->a, ev->a_len);
    if (ev->kind == SHL__EV_CALL_STARTED) {
        shl__sbuf_printf(trail, ",\"participantId\":");
        ref_json(trail, ev->b, ev->b_len);
    } else {
        shl__sbuf_printf(trail, ",\"durationMs\":%lld", (long long)ev->value);
        if (ev->kind == SHL__EV_CALL_FAILED) {
            shl__sbuf_printf(trail, ",\"error\":");
            ref_json(trail, ev->b, ev->b_len);
        }
    }
    shl__sbuf_add(trail, "}\n", 2);
}

static void
check_event(const struct shl__event *ev)
{
    struct shl__sbuf rl, rt, l1, t1, l2, t2;
    shl__sbuf_init(&rl);
    shl__sbuf_init(&rt);
    shl__sbuf_init(&l1);
    shl__sbuf_init(&t1);
    shl__sbuf_init(&l2);
    shl__sbuf_init(&t2);
    ref_lines(ev, &rl, &rt);
    assert_int_equal(shl__event_render(ev, SHL__FILE_LOG, &l1), 0);
    assert_int_equal(shl__event_render(ev, SHL__FILE_TRAIL, &t1), 0);
    assert_int_equal(shl__event_render_call(ev, &l2, &t2), 0);
    assert_string_equal(l1.p, rl.p);
    assert_string_equal(t1.p, rt.p);
    assert_string_equal(l2.p, rl.p);
    assert_string_equal(t2.p, rt.p);
    assert_int_equal(l2.len, rl.len);
    assert_int_equal(t2.len, rt.len);
    shl__sbuf_fini(&rl);
    shl__sbuf_fini(&rt);
    shl__sbuf_fini(&l1);
    shl__sbuf_fini(&t1);
    shl__sbuf_fini(&l2);
    shl__sbuf_fini(&t2);
}

/* Every special byte (and multi-byte sequence) at every position of a
 * 21-byte field, in a and in b, for the three call kinds. */
static void
test_render_call_fast_path_sweep(void **state)
{
    (void)state;
    static const char *const special[] = {
        "\"", "\\", "\n", "\r", "\t", "\x01", "\x1f", "\x7f", " ",
        "~", "\xc3\xa9",     /* é: valid UTF-8 */
        "\xe2\x82\xac",      /* € */
        "\xff",              /* invalid */
        "\xc2\x85",          /* C1 control: escaped in the log */
        "\xc3",              /* truncated sequence */
        "\x80",              /* lone continuation byte */
    };
    char iso[48];
    int iso_n = shl__format_iso(1700000000123456LL, iso, sizeof(iso));
    assert_true(iso_n > 0);
    const char plain[] = "call-0123456789abcdefghij";
    for (int kind = SHL__EV_CALL_STARTED; kind <= SHL__EV_CALL_FAILED;
         kind++) {
        for (size_t si = 0; si < sizeof(special) / sizeof(special[0]); si++) {
            for (size_t pos = 0; pos <= 21; pos++) {
                for (int field = 0; field < 2; field++) {
                    char text[64];
                    size_t sl = strlen(special[si]);
                    memcpy(text, plain, pos);
                    memcpy(text + pos, special[si], sl);
                    memcpy(text + pos + sl, plain + pos, 21 - pos);
                    size_t tl = 21 + sl;
                    struct shl__event ev = {0};
                    ev.kind = (uint32_t)kind;
                    ev.level = (uint32_t)((pos + si) % 4);
                    ev.wall_us = 1700000000123456LL;
                    ev.value = (int64_t)pos * 1000 - 3;
                    ev.seq = 12345 + pos;
                    ev.pid = 4242;
                    ev.iso = iso;
                    ev.iso_len = (size_t)iso_n;
                    ev.op_id = "op";
                    ev.a = field == 0 ? text : plain;
                    ev.a_len = field == 0 ? tl : 21;
                    ev.b = field == 1 ? text : plain;
                    ev.b_len = field == 1 ? tl : 21;
                    check_event(&ev);
                }
            }
        }
    }
}

/* Short and empty fields (below one word), and a NUL inside a field. */
static void
test_render_call_short_fields(void **state)
{
    (void)state;
    char iso[48];
    int iso_n = shl__format_iso(-1234567LL, iso, sizeof(iso));
    assert_true(iso_n > 0);
    static const struct {
        const char *s;
        size_t n;
    } f[] = {{"", 0},      {"a", 1},         {"ab\"", 3},
             {"a\0b", 3},  {"1234567", 7},   {"12345678", 8},
             {"123456789", 9}, {"\xf0\x9f\x98\x80", 4}};
    for (int kind = SHL__EV_CALL_STARTED; kind <= SHL__EV_CALL_FAILED; kind++)
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
            for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++) {
                struct shl__event ev = {0};
                ev.kind = (uint32_t)kind;
                ev.level = SHL_LOG_WARNING;
                ev.value = -7;
                ev.seq = 1;
                ev.pid = -1;
                ev.iso = iso;
                ev.iso_len = (size_t)iso_n;
                ev.op_id = "op";
                ev.a = f[i].s;
                ev.a_len = f[i].n;
                ev.b = f[j].s;
                ev.b_len = f[j].n;
                check_event(&ev);
            }
}

/* The fixed text, checked once by hand (the references above share the
 * formats with the code: this pins them to the original's). */
static void
test_render_call_literal(void **state)
{
    (void)state;
    struct shl__event ev = {0};
    ev.kind = SHL__EV_CALL_FAILED;
    ev.level = SHL_LOG_ERROR;
    ev.value = 12;
    ev.seq = 7;
    ev.pid = 99;
    ev.iso = "2023-11-14T22:13:20.123456+00:00";
    ev.iso_len = strlen(ev.iso);
    ev.op_id = "op";
    ev.a = "c1";
    ev.a_len = 2;
    ev.b = "bad \"q\"\n\xff";
    ev.b_len = strlen(ev.b);
    struct shl__sbuf l, t;
    shl__sbuf_init(&l);
    shl__sbuf_init(&t);
    assert_int_equal(shl__event_render_call(&ev, &l, &t), 0);
    assert_string_equal(l.p, "2023-11-14T22:13:20.123456+00:00 [ERROR] "
                             "CALL_FAILED callId=c1 duration=12ms error=bad "
                             "\"q\"\\n\xef\xbf\xbd\n");
    assert_string_equal(t.p, "{\"seq\":7,\"ts\":\"2023-11-14T22:13:20.123456+"
                             "00:00\",\"event\":\"CALL_FAILED\",\"level\":"
                             "\"ERROR\",\"pid\":99,\"callId\":\"c1\","
                             "\"durationMs\":12,\"error\":\"bad \\\"q\\\"\\n"
                             "\xef\xbf\xbd\"}\n");
    ev.kind = SHL__EV_LOG;
    assert_int_equal(shl__event_render_call(&ev, &l, &t), -EINVAL);
    shl__sbuf_fini(&l);
    shl__sbuf_fini(&t);
}

/* ---- library events: the trail line without a JSON tree ---- */

/* shl__event_render's trail line of a library event equals the JSON
 * tree's (shl__event_render_trail_tree), whichever path it took. */
static void
check_lib(uint32_t kind, uint64_t seq, const char *a, size_t a_len)
{
    struct shl__event ev = {0};
    ev.kind = kind;
    ev.level = (uint32_t)(a_len % 5); /* 4: out of range, "UNKNOWN" */
    ev.wall_us = 1700000000123456LL;
    ev.seq = seq;
    ev.pid = 31337;
    ev.op_id = "op";
    ev.a = a;
    ev.a_len = a_len;
    struct shl__sbuf t1, t2;
    shl__sbuf_init(&t1);
    shl__sbuf_init(&t2);
    assert_int_equal(shl__event_render(&ev, SHL__FILE_TRAIL, &t1), 0);
    assert_int_equal(shl__event_render_trail_tree(&ev, &t2), 0);
    if (t1.len != t2.len || memcmp(t1.p, t2.p, t1.len) != 0)
        fail_msg("text %.*s:\n  direct %s  tree   %s", (int)a_len, a, t1.p,
                 t2.p);
    shl__sbuf_fini(&t1);
    shl__sbuf_fini(&t2);
}

/* The lines the library writes, and texts that must leave the direct
 * path (a field named like the line's own keys, a repeated key, a pid that
 * is not a number, too many fields, a key longer than 63 bytes). */
static void
test_render_lib_lines(void **state)
{
    (void)state;
    static const char *const text[] = {
        "PARTICIPANT_JOINED participant=joiner pid=4242",
        "PARTICIPANT_LEFT participant=joiner pid=-17",
        "PARTICIPANT_CRASHED participant=w1 pid=77 reason=pidfd fired x=1",
        "ABORT_FLAG_SET value=true",
        "TEMP_RESOURCE_REGISTERED path=/tmp/a b c=d owner=p",
        "OPERATION_STATE_CHANGED from=running to=cleanup",
        "CRASH_DETECTED participant=w pid=12 error=died: x=y z",
        "OPERATION_FAILED message=m1 pid=3",
        "NAME", "", " ", "  lead=1", "N k=", "N k= j=", "N =v", "N k=v =w",
        "N pid=abc", "N pid=", "N pid=-", "N pid=123456789012",
        "N pid=12345678901", "N pid=1 pid=2", "N a=1 a=2", "N seq=5",
        "N ts=x", "N event=e", "N level=l", "N message=all of it k=v",
        "N a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8",
        "N a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9",
        "N k_1=v/with/slashes K2=~`'!@#$%^&*()",
        "N kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=63",
        "N kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=64",
        "N k=\"quoted\"", "N k=back\\slash", "N k=tab\there",
        "N k=\xc3\xa9t\xc3\xa9", "N k=\xff bad", "N k=a\nb",
    };
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        for (uint32_t kind = SHL__EV_LIB; kind <= SHL__EV_TRAIL;
             kind += SHL__EV_TRAIL - SHL__EV_LIB) {
            check_lib(kind, 0, text[i], strlen(text[i]));
            check_lib(kind, 987654321, text[i], strlen(text[i]));
        }
    /* every byte at every position of a participant line */
    const char base[] = "PARTICIPANT_JOINED participant=joiner pid=4242";
    size_t bl = sizeof(base) - 1;
    for (int c = 0; c < 256; c++)
        for (size_t pos = 0; pos <= bl; pos++) {
            char t[64];
            memcpy(t, base, pos);
            t[pos] = (char)c;
            memcpy(t + pos + 1, base + pos, bl - pos);
            check_lib(SHL__EV_TRAIL, pos + 1, t, bl + 1);
        }
}

/* The direct path's bytes, pinned by hand once. */
static void
test_render_lib_literal(void **state)
{
    (void)state;
    struct shl__event ev = {0};
    ev.kind = SHL__EV_TRAIL;
    ev.level = SHL_LOG_INFO;
    ev.seq = 3;
    ev.pid = 99;
    ev.iso = "2023-11-14T22:13:20.123456+00:00";
    ev.iso_len = strlen(ev.iso);
    ev.op_id = "op";
    ev.a = "PARTICIPANT_LEFT participant=w pid=12";
    ev.a_len = strlen(ev.a);
    struct shl__sbuf t;
    shl__sbuf_init(&t);
    assert_int_equal(shl__event_render(&ev, SHL__FILE_TRAIL, &t), 0);
    assert_string_equal(t.p, "{\"seq\":3,\"ts\":\"2023-11-14T22:13:20.123456+"
                             "00:00\",\"event\":\"PARTICIPANT_LEFT\",\"level\":"
                             "\"INFO\",\"pid\":12,\"participant\":\"w\","
                             "\"message\":\"PARTICIPANT_LEFT participant=w "
                             "pid=12\"}\n");
    shl__sbuf_fini(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_call_fast_path_sweep),
        cmocka_unit_test(test_render_call_short_fields),
        cmocka_unit_test(test_render_call_literal),
        cmocka_unit_test(test_render_lib_lines),
        cmocka_unit_test(test_render_lib_literal),
    };
    return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
