/*
 * exit.c: library code -> exit status, for both tools (exit.h).
 */
#include "exit.h"

#include <shmledger/shmledger.h>

int
shl_tool_exit_for(int rc)
{
    switch (rc) {
    case 0:
        return EX_OK;
    case SHL_EVERSION:
    case SHL_EFORMAT:
    case SHL_EOWNER:
    case SHL_ECORRUPT:
    case SHL_ENOTREADY:
    case SHL_EPANIC:
    case SHL_EUNSAFE:
        return EX_SEGMENT;
    case SHL_EIO:
        return EX_FILES;
    case SHL_EBADID:
        return EX_USAGE;
    default:
        return EX_FAIL;
    }
}
