// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "brake.h"
#include "common.h"
#include "procfs-read.h"

bool brake_available(const char *dir, enum cg_version version)
{
	char path[PATH_MAX];

	if (version != CG_V2 || !dir || !dir[0])
		return false;
	if (snprintf(path, sizeof(path), "%s/memory.high", dir) >= (int)sizeof(path))
		return false;
	return access(path, W_OK) == 0;
}

int brake_write_high(const char *dir, uint64_t bytes)
{
	char path[PATH_MAX], val[32];
	int fd, n, r = 0;

	if (!dir || !dir[0])
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/memory.high", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	n = bytes == CG_UNLIMITED ? snprintf(val, sizeof(val), "max") :
				    snprintf(val, sizeof(val), "%llu", (unsigned long long)bytes);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, (size_t)n) != n)
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

int brake_read_high(const char *dir, uint64_t *ret)
{
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX];
	int r;

	if (!dir || !dir[0] || !ret)
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/memory.high", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	r = procfs_read_text(path, 64, &text, NULL);
	if (r < 0)
		return r;
	return cg_parse_value(text, ret);
}
