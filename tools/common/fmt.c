/* fmt.c: text formatting shared by the tools; see fmt.h. */
#include "fmt.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

const char *
shl_tool_fmt_age(int64_t ms, char *buf, size_t cap)
{
    if (ms < 0)
        snprintf(buf, cap, "-");
    else if (ms < 1000)
        snprintf(buf, cap, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(buf, cap, "%lld.%llds", (long long)(ms / 1000),
                 (long long)(ms % 1000 / 100));
    else if (ms < 3600000)
        snprintf(buf, cap, "%lldm%02llds", (long long)(ms / 60000),
                 (long long)(ms / 1000 % 60));
    else if (ms < 86400000)
        snprintf(buf, cap, "%lldh%02lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
    else
        snprintf(buf, cap, "%lldd%02lldh", (long long)(ms / 86400000),
                 (long long)(ms / 3600000 % 24));
    return buf;
}

void
shl_tool_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20) {
                fprintf(f, "\\u%04x", *p);
            } else if (*p < 0x80) {
                fputc(*p, f);
            } else {
                size_t k = shl_tool_utf8_seq(p, strlen((const char *)p));
                if (k == 0) {
                    fputs("\\ufffd", f);
                } else {
                    fwrite(p, 1, k, f);
                    p += k - 1;
                }
            }
        }
    }
    fputc('"', f);
}

void
shl_tool_one_line(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return;
    size_t n = 0;
    for (; src && *src && n + 1 < cap; src++)
        dst[n++] = (*src == '\n' || *src == '\r') ? ' ' : *src;
    dst[n] = 0;
}

size_t
shl_tool_utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

char *
shl_tool_term_safe(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return dst;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t n = strlen((const char *)p);
    for (size_t i = 0; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : shl_tool_utf8_seq(p + i, n - i);
        bool ctl = k == 1 && (p[i] < 0x20 || p[i] == 0x7f);
        bool c1 = k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0;
        if (k == 0 || ctl || c1) {
            if (o + 1 >= cap)
                break;
            dst[o++] = '?';
            i += k ? k : 1;
            continue;
        }
        if (o + k >= cap)
            break;
        memcpy(dst + o, p + i, k);
        o += k;
        i += k;
    }
    dst[o] = 0;
    return dst;
}
