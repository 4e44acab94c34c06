/*
 * spawned.h: the SpawnedCall handle and sync / awaitCall (spawned.c). Their
 * API is in shmledger.h; this module has no internal functions.
 */
#ifndef SHL_SESSION_SPAWNED_H
#define SHL_SESSION_SPAWNED_H

#include "objects.h"

#endif /* SHL_SESSION_SPAWNED_H */
