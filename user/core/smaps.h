/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's own mappings as /proc/self/smaps lists them, and which of them hold only pages that startup
 * touched and the kernel can give back for nothing. Pure: no I/O; tested by table (tests/unit/test_smaps.c).
 *
 * Shared libraries are mapped whole, and their start (the dynamic linker, OpenSSL's and libcurl's global init,
 * libbpf reading BTF) faults in pages that the loop never runs again; mlockall() then pins them for the life of
 * the daemon. A read-only file mapping without private copies (no "Anonymous" pages: no relocation written there,
 * no uprobe breakpoint) is the file's page cache and nothing else: dropping it from the page tables loses
 * nothing, and what the loop needs comes back on the next touch, locked again (MLOCK_ONFAULT). */
#ifndef OOMSENTRY_SMAPS_H
#define OOMSENTRY_SMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMAPS_PATH_MAX 256

struct smaps_mapping {
	uint64_t start, end;       /* [start, end) */
	char perms[5];             /* "r-xp" */
	bool file;                 /* backed by a file (the path is absolute) */
	char path[SMAPS_PATH_MAX]; /* as smaps names it ("[heap]", "anon_inode:bpf-map", "/usr/lib/..."); truncated */
	uint64_t rss_kib;
	uint64_t anonymous_kib;    /* private copies: relocations, COW'd pages, breakpoints */
	uint64_t locked_kib;
};

/* Parses the mapping that starts at *pos (a header line "start-end perms offset dev inode [path]" and its
 * "Key: value kB" lines) and moves *pos past it. Returns 1 with *m filled, 0 at the end of text, -EINVAL on a
 * header it cannot read (*pos then skips that line, so a caller can go on). */
int smaps_next(const char *text, size_t *pos, struct smaps_mapping *m);

/* Whether startup's pages of m can be dropped: a file mapping, neither writable nor executable-and-ours
 * (self_path: the daemon's own binary, whose code is the hot path and stays resident whole), with pages resident
 * and none of them private. */
bool smaps_droppable(const struct smaps_mapping *m, const char *self_path);

#endif
