/*
 * temp.h: temp resources of a session (the public register/unregister
 * functions are in shmledger.h). The one internal entry is the path
 * normalisation, exposed for the fuzz test (tests/fuzz/fuzz_ids.c).
 */
#ifndef SHL_SESSION_TEMP_H
#define SHL_SESSION_TEMP_H

#include <stddef.h>

/* Normalise the absolute path in[0..len) lexically into out (cap bytes):
 * repeated '/' and "." components removed, ".." resolved. Returns 0,
 * -EINVAL (empty, relative, embedded NUL) or -ENAMETOOLONG. */
int shl__temp_normalise_path(const char *in, size_t len, char *out, size_t cap);

#endif /* SHL_SESSION_TEMP_H */
