/*
 * fuzz_ids.c: id validation (shl_validate_operation_id,
 * shl_validate_participant_id) and temp-path normalisation
 * (shl__temp_normalise_path, the seam over temp.c's normalise_path).
 *
 * Input: one selector byte, then the text (not NUL-terminated for the
 * path: it gets exactly its bytes, so ASan sees any over-read).
 * Invariants: a valid id has the documented shape; a normalised path is
 * absolute, has no empty, "." or ".." component, no trailing '/', fits
 * the buffer, and normalising it again changes nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"
#include "session/temp.h"
#include "shmledger/shmledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
id_shape_ok(const char *id, size_t max)
{
    size_t n = strlen(id);
    if (n == 0 || n > max || strstr(id, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

static void
check_normalised(const char *p, size_t cap)
{
    size_t n = strlen(p);
    FUZZ_CHECK(n < cap, "length %zu >= cap %zu", n, cap);
    FUZZ_CHECK(p[0] == '/', "not absolute: %s", p);
    FUZZ_CHECK(n == 1 || p[n - 1] != '/', "trailing slash: %s", p);
    FUZZ_CHECK(!strstr(p, "//"), "empty component: %s", p);
    FUZZ_CHECK(!strstr(p, "/./") && !(n >= 2 && strcmp(p + n - 2, "/.") == 0),
               "'.' component: %s", p);
    FUZZ_CHECK(!strstr(p, "/../") && !(n >= 3 && strcmp(p + n - 3, "/..") == 0),
               "'..' component: %s", p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;

    int rc = shl_validate_operation_id(text);
    FUZZ_CHECK(rc == 0 || rc == SHL_EBADID, "operation id -> %d", rc);
    if (rc == 0)
        FUZZ_CHECK(id_shape_ok(text, SHL_OPERATION_ID_MAX),
                   "accepted operation id '%s'", text);
    else if (memchr(text, 0, size) == NULL)
        FUZZ_CHECK(!id_shape_ok(text, SHL_OPERATION_ID_MAX),
                   "refused operation id '%s'", text);
    rc = shl_validate_participant_id(text);
    FUZZ_CHECK(rc == 0 || rc == SHL_EBADID, "participant id -> %d", rc);
    if (rc == 0)
        FUZZ_CHECK(id_shape_ok(text, SHL_PARTICIPANT_ID_MAX),
                   "accepted participant id '%s'", text);
    else if (memchr(text, 0, size) == NULL)
        FUZZ_CHECK(!id_shape_ok(text, SHL_PARTICIPANT_ID_MAX),
                   "refused participant id '%s'", text);
    free(text);

    /* the path: exactly `size` bytes, and a buffer of a fuzzed size */
    char *path = malloc(size ? size : 1);
    if (!path)
        return 0;
    memcpy(path, data, size);
    size_t cap = (sel & 1) ? SHL_PATH_MAX + 1 : (size_t)(sel >> 1) + 2;
    char *out = malloc(cap);
    if (out) {
        rc = shl__temp_normalise_path(path, size, out, cap);
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG,
                   "normalise -> %d", rc);
        if (rc == 0) {
            check_normalised(out, cap);
            size_t n = strlen(out);
            char *again = malloc(cap);
            if (again) {
                int rc2 = shl__temp_normalise_path(out, n, again, cap);
                FUZZ_CHECK(rc2 == 0 && strcmp(out, again) == 0,
                           "not idempotent: '%s' -> %d '%s'", out, rc2,
                           rc2 == 0 ? again : "");
                free(again);
            }
        }
        free(out);
    }
    free(path);
    return 0;
}
