// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "common.h"
#include "memwatch.h"

int memwatch_v1_arm(const char *cgroup_dir, uint64_t threshold_bytes)
{
	_cleanup_close_ int ufd = -1, cfd = -1;
	char path[PATH_MAX], line[96];
	int efd, n;

	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cgroup_dir);
	ufd = open(path, O_RDONLY | O_CLOEXEC);
	if (ufd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/cgroup.event_control", cgroup_dir);
	cfd = open(path, O_WRONLY | O_CLOEXEC);
	if (cfd < 0)
		return -errno;
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return -errno;
	/* "<eventfd> <fd of memory.usage_in_bytes> <threshold>": the kernel keeps what it needs of both files */
	n = snprintf(line, sizeof(line), "%d %d %llu", efd, ufd, (unsigned long long)threshold_bytes);
	if (write(cfd, line, (size_t)n) != n) {
		int r = -errno;
		close(efd);
		return r ? r : -EIO;
	}
	return efd;
}

uint64_t memwatch_drain(int efd)
{
	uint64_t n = 0;

	if (read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}
