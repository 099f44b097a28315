// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "instlock.h"

int instlock_name(const char *url, char *buf, size_t len)
{
	char host[128];
	uint16_t port;
	int n;

	if (!url || !buf || config_url_host(url, host, sizeof(host)) < 0 || config_url_port(url, &port) < 0)
		return -EINVAL;
	for (char *h = host; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '.' ||
		      *h == '-'))
			*h = '_';
	n = snprintf(buf, len, "instance-%s_%u.lock", host, port);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

void instlock_release(int *fds)
{
	for (int i = 0; i < CONFIG_MAX_INSTANCES; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

static pid_t holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long v;

	if (n <= 0)
		return 0;
	buf[n] = 0;
	v = strtol(buf, NULL, 10);
	return v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

int instlock_acquire(const struct config *cfg, int *fds, char *err, size_t errlen)
{
	char name[192], path[PATH_MAX + 200], pid[24];
	int r;

	for (int i = 0; i < CONFIG_MAX_INSTANCES; i++)
		fds[i] = -1;
	if (mkdir(cfg->runtime_dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create the runtime directory %s: %s", cfg->runtime_dir, strerror(-r));
		return r;
	}
	for (int i = 0; i < cfg->n_instances; i++) {
		const struct instance_config *ic = &cfg->instances[i];
		int fd;

		if (instlock_name(ic->url, name, sizeof(name)) < 0) {
			snprintf(err, errlen, "instance %s: no lock name for url %.100s", ic->name, ic->url);
			instlock_release(fds);
			return -EINVAL;
		}
		snprintf(path, sizeof(path), "%s/%s", cfg->runtime_dir, name);
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
		if (fd < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot open the lock %s: %s", path, strerror(-r));
			instlock_release(fds);
			return r;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			r = errno == EWOULDBLOCK ? -EBUSY : -errno;
			if (r == -EBUSY)
				snprintf(err, errlen, "instance %s (%.100s) is already watched by another oomsentry, pid %d "
					 "(lock %s); stop that one first", ic->name, ic->url, (int)holder_pid(fd), path);
			else
				snprintf(err, errlen, "cannot lock %s: %s", path, strerror(-r));
			close(fd);
			instlock_release(fds);
			return r;
		}
		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
			/* the lock holds without the pid; only the message of a second daemon is poorer */
		}
		fds[i] = fd;
	}
	return 0;
}
