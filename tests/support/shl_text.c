/* shl_text.c: see shl_text.h. */
#include "shl_text.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>

#include "shl_test.h"

char *
shl_test_slurp(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 14, len = 0, n;
    char *buf = malloc(cap);
    if (!buf)
        goto fail;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 >= cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                goto fail;
            buf = b;
        }
    }
    if (ferror(f)) {
        errno = EIO;
        goto fail;
    }
    buf[len] = 0;
    fclose(f);
    if (len_out)
        *len_out = len;
    return buf;
fail:;
    int e = errno;
    free(buf);
    fclose(f);
    errno = e;
    return NULL;
}

bool
shl_test_rx_match(const char *re, const char *s)
{
    regex_t rx;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        fail_msg("bad regex %s", re);
    bool ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}
