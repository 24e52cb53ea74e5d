#define _GNU_SOURCE
#include <fcntl.h>
#include "CWharfSystem.h"

int wharf_start_writeback(int descriptor, long long offset, long long length) {
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(descriptor, offset, length, SYNC_FILE_RANGE_WRITE);
#else
    (void)descriptor; (void)offset; (void)length;
    return 0;
#endif
}

int wharf_wait_writeback(int descriptor, long long offset, long long length) {
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(descriptor, offset, length,
                           SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
#else
    (void)descriptor; (void)offset; (void)length;
    return 0;
#endif
}

int wharf_direct_flag(void) {
#ifdef O_DIRECT
    return O_DIRECT;
#else
    return 0;
#endif
}

#include <malloc.h>

void wharf_release_free_memory(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}
