/*
 * format.h: the toString() equivalents and CallFrame.isStale (format.c).
 * Their API is in shmledger.h; this module has no internal functions.
 */
#ifndef SHL_SESSION_FORMAT_H
#define SHL_SESSION_FORMAT_H

#include "objects.h"

#endif /* SHL_SESSION_FORMAT_H */
