// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "learn-store.h"
#include "statefile.h"
#include "procfs-read.h"

/* learn_format() of a full table: 9 averages and 64 model lines of at most ~200 bytes. */
#define LEARN_FILE_MAX (32 * 1024)

static void sanitize(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++) {
		char c = src[i];

		dst[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
				 c == '-' ?
			 c : '_';
	}
	dst[i] = '\0';
}

int learn_store_path(const char *state_dir, const char *instance, const char *url, char *buf, size_t len)
{
	char name[80], where[160];
	const char *hp;
	int n;

	if (!state_dir || !state_dir[0] || !instance || !url || !buf || !len)
		return -EINVAL;
	hp = strstr(url, "://");
	hp = hp ? hp + 3 : url;
	sanitize(name, sizeof(name), instance);
	sanitize(where, sizeof(where), hp);
	/* http://127.0.0.1:8188/ and http://127.0.0.1:8188 are one server */
	for (size_t l = strlen(where); l && where[l - 1] == '_'; l--)
		where[l - 1] = '\0';
	n = snprintf(buf, len, "%s/learn-%s-%s", state_dir, name, where);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int learn_store_load(const char *path, struct learn_stats *ret)
{
	_cleanup_free_ char *text = NULL;
	int r;

	learn_init(ret);
	if (!path || !ret)
		return -EINVAL;
	r = procfs_read_text(path, LEARN_FILE_MAX, &text, NULL);
	if (r < 0)
		return r;
	return learn_parse(text, ret);
}

static int mkdir_parents(const char *dir)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* path's directory into dir; returns the '/' before the file name, or NULL when path has no directory part
 * (or one too long for dir). */
static const char *split_dir(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path || (size_t)(slash - path) >= size)
		return NULL;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return slash;
}

int learn_store_save_async(const char *path, const struct learn_stats *l)
{
	_cleanup_free_ char *text = NULL;
	char dir[PATH_MAX];
	const char *slash;
	int n;

	if (!path || !l)
		return -EINVAL;
	slash = split_dir(path, dir, sizeof(dir));
	if (!slash || !slash[1])
		return -EINVAL;
	text = malloc(LEARN_FILE_MAX);
	if (!text)
		return -ENOMEM;
	n = learn_format(l, text, LEARN_FILE_MAX);
	if (n < 0)
		return n;
	return statefile_write_async(dir, slash + 1, text);
}

int learn_store_save(const char *path, const struct learn_stats *l)
{
	_cleanup_free_ char *text = NULL;
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *slash;
	int fd, dfd, n, r = 0;
	size_t off = 0;

	if (!path || !l)
		return -EINVAL;
	slash = split_dir(path, dir, sizeof(dir));
	if (!slash)
		return -EINVAL;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	text = malloc(LEARN_FILE_MAX);
	if (!text)
		return -ENOMEM;
	n = learn_format(l, text, LEARN_FILE_MAX);
	if (n < 0)
		return n;
	r = mkdir_parents(dir);
	if (r < 0)
		return r;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	while (off < (size_t)n) {
		ssize_t w = write(fd, text + off, (size_t)n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)w;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	/* the rename itself must survive a crash too */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0)
			r = -errno;
		close(dfd);
	}
	return r;
}
