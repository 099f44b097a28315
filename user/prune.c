// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "log.h"
#include "prune.h"

#define PRUNE_MAX_ITEMS 4096

size_t prune_select(const struct prune_item *items, size_t n, uint64_t max_count, uint64_t max_bytes,
		    bool *ret_remove)
{
	size_t newest = 0, left = n, removed = 0;
	uint64_t total = 0;

	if (!items || !ret_remove || !n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		ret_remove[i] = false;
		total = items[i].bytes > UINT64_MAX - total ? UINT64_MAX : total + items[i].bytes;
		if (items[i].mtime_ns > items[newest].mtime_ns)
			newest = i;
	}
	while (left > 1 && (left > max_count || (max_bytes && total > max_bytes))) {
		size_t oldest = SIZE_MAX;

		for (size_t i = 0; i < n; i++)
			if (!ret_remove[i] && i != newest && (oldest == SIZE_MAX || items[i].mtime_ns < items[oldest].mtime_ns))
				oldest = i;
		if (oldest == SIZE_MAX)
			break;
		ret_remove[oldest] = true;
		total -= MIN(total, items[oldest].bytes);
		left--;
		removed++;
	}
	return removed;
}

/* "20261130T140000Z-default-oom": a report's name starts with its date */
static bool report_name(const char *name)
{
	for (int i = 0; i < 8; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return name[8] == 'T';
}

/* Sum of the regular files directly in the report; -ENOENT when it holds no incident.json (not a report). */
static int report_size(int dfd, const char *name, uint64_t *ret)
{
	struct stat st;
	struct dirent *de;
	uint64_t sum = 0;
	bool has_json = false;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
			sum += (uint64_t)st.st_size;
			has_json |= !strcmp(de->d_name, "incident.json");
		}
	closedir(d);
	*ret = sum;
	return has_json ? 0 : -ENOENT;
}

static int remove_report(int dfd, const char *name)
{
	struct dirent *de;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			(void)unlinkat(fd, de->d_name, 0);
	closedir(d);
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int prune_incidents(const char *dir, uint64_t max_count, uint64_t max_bytes)
{
	_cleanup_free_ struct prune_item *items = NULL;
	_cleanup_free_ char(*names)[256] = NULL;
	_cleanup_free_ bool *rm = NULL;
	struct dirent *de;
	size_t n = 0;
	int dfd, removed = 0;
	DIR *d;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	items = calloc(PRUNE_MAX_ITEMS, sizeof(*items));
	names = calloc(PRUNE_MAX_ITEMS, sizeof(*names));
	rm = calloc(PRUNE_MAX_ITEMS, sizeof(*rm));
	d = fdopendir(dfd);
	if (!items || !names || !rm || !d) {
		if (d)
			closedir(d);
		else
			close(dfd);
		return -ENOMEM;
	}
	while ((de = readdir(d)) && n < PRUNE_MAX_ITEMS) {
		struct stat st;

		if (!report_name(de->d_name) || strlen(de->d_name) >= sizeof(names[0]) ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
		    report_size(dfd, de->d_name, &items[n].bytes) < 0)
			continue;
		items[n].mtime_ns = (uint64_t)st.st_mtim.tv_sec * NSEC_PER_SEC + (uint64_t)st.st_mtim.tv_nsec;
		snprintf(names[n], sizeof(names[n]), "%s", de->d_name);
		n++;
	}
	if (prune_select(items, n, max_count, max_bytes, rm)) {
		for (size_t i = 0; i < n; i++) {
			int r;
			if (!rm[i])
				continue;
			r = remove_report(dfd, names[i]);
			if (r < 0)
				log_warn_errno(r, "incident: cannot remove %s/%s", dir, names[i]);
			else
				removed++;
		}
		/* the removals must be as durable as the report that caused them */
		fsync(dfd);
	}
	closedir(d);
	return removed;
}
