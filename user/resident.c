// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "common.h"
#include "procfs-read.h"
#include "resident.h"
#include "smaps.h"

int resident_lock(void)
{
	/* a watchdog paged out under memory pressure reacts when it is too late; MCL_ONFAULT (4.4) locks what is
	 * used instead of every page of every library mapped */
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
		return 0;
	return mlockall(MCL_CURRENT | MCL_FUTURE) < 0 ? -errno : 0;
}

static void note_failure(struct resident_trim_stats *st, int err)
{
	if (!st->failures++)
		st->err = err;
}

int resident_trim(struct resident_trim_stats *st)
{
	_cleanup_free_ char *text = NULL;
	char self[SMAPS_PATH_MAX] = "";
	struct smaps_mapping m;
	size_t pos = 0;
	ssize_t n;
	int r;

	memset(st, 0, sizeof(*st));
	/* libbpf's load (the vmlinux BTF it parsed, the object's load data) and the /proc scan freed what they used;
	 * glibc keeps freed heap until told */
	malloc_trim(0);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	r = procfs_read_text("/proc/self/smaps", 4 << 20, &text, NULL);
	if (r < 0)
		return r;
	while ((r = smaps_next(text, &pos, &m)) != 0) {
		void *start = (void *)(uintptr_t)m.start;
		size_t len = (size_t)(m.end - m.start);

		if (r < 0)
			continue;
		if (m.file && self[0] && !strcmp(m.path, self) && m.perms[1] != 'w') {
			/* the daemon's own code: the path from an event to the action, resident before it is needed */
			if (mlock(start, len) < 0)
				note_failure(st, -errno);
			else
				st->own_text_kib += len >> 10;
			continue;
		}
		if (!smaps_droppable(&m, self))
			continue;
		/* a locked range cannot be dropped; it is locked again at once, on fault only */
		if (munlock(start, len) < 0 || madvise(start, len, MADV_DONTNEED) < 0) {
			note_failure(st, -errno);
		} else {
			st->dropped_kib += m.rss_kib;
			st->mappings++;
		}
		if (mlock2(start, len, MLOCK_ONFAULT) < 0)
			note_failure(st, -errno);
	}
	return 0;
}
