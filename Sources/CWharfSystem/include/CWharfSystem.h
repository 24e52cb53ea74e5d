#ifndef CWHARF_SYSTEM_H
#define CWHARF_SYSTEM_H

/// Linux calls that Swift's Glibc module does not show (they need _GNU_SOURCE).

/// Starts writing the file's dirty pages in [offset, offset + length) to disk; returns at once.
int wharf_start_writeback(int descriptor, long long offset, long long length);

/// Writes [offset, offset + length) to disk and waits until that is done. Unlike fsync it
/// makes nothing durable (no metadata, no disk cache flush); it bounds dirty pages.
int wharf_wait_writeback(int descriptor, long long offset, long long length);

/// `O_DIRECT` (0 where there is none): `open` with it writes past the page cache, from
/// aligned memory in aligned sizes.
int wharf_direct_flag(void);

/// Gives memory malloc holds free back to the system (glibc's `malloc_trim`).
void wharf_release_free_memory(void);

#endif
