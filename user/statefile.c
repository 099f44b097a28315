// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "statefile.h"

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void sync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

int statefile_write(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	size_t len = strlen(text), off = 0;
	int fd, r = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	r = mkdir_p(dir);
	if (r < 0)
		return r;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	sync_dir(dir);
	return 0;
}

int statefile_read(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf;
	size_t off = 0;
	int fd;

	*ret = NULL;
	*ret_len = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(fd);
		return -EPERM;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = 0;
	*ret = buf;
	*ret_len = off;
	return 0;
}

int statefile_remove(const char *dir, const char *name)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	sync_dir(dir);
	return 0;
}

/* ---- writes off the event loop ----
 *
 * An fsync on ext4 (data=ordered) commits the journal, which first writes out every other file's dirty data: with
 * a busy disk (images being saved, a VM image) it takes seconds, and a loop that waits for it handles no RSS event
 * and finds no restarted server meanwhile. One worker thread does the writes; the loop only queues them. A write
 * queued for a file whose previous write has not started replaces it: what the file must hold is the latest. */

struct job {
	char *dir, *name, *text;
	struct job *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static bool started, busy;
static int last_err;

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->dir);
	free(j->name);
	free(j->text);
	free(j);
}

static void *worker(void *arg)
{
	sigset_t all;

	(void)arg;
	/* signals are the loop's (signalfd): none may land on this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct job *j;
		int r;

		pthread_mutex_lock(&mu);
		while (!head)
			pthread_cond_wait(&cv, &mu);
		j = head;
		head = j->next;
		if (!head)
			tail = NULL;
		busy = true;
		pthread_mutex_unlock(&mu);
		r = statefile_write(j->dir, j->name, j->text);
		job_free(j);
		pthread_mutex_lock(&mu);
		busy = false;
		if (r < 0)
			last_err = r;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

int statefile_write_async(const char *dir, const char *name, const char *text)
{
	struct job *j;
	char *copy = strdup(text);
	int r = 0;

	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&mu);
	for (j = head; j; j = j->next)
		if (!strcmp(j->dir, dir) && !strcmp(j->name, name)) {
			free(j->text);
			j->text = copy;
			pthread_mutex_unlock(&mu);
			return 0;
		}
	j = calloc(1, sizeof(*j));
	if (j) {
		j->dir = strdup(dir);
		j->name = strdup(name);
		j->text = copy;
		copy = NULL;
	}
	if (!j || !j->dir || !j->name) {
		job_free(j);
		r = -ENOMEM;
		goto out;
	}
	if (!started) {
		pthread_t t;
		pthread_attr_t a;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		r = -pthread_create(&t, &a, worker, NULL);
		pthread_attr_destroy(&a);
		if (r < 0) {
			job_free(j);
			goto out;
		}
		started = true;
	}
	if (tail)
		tail->next = j;
	else
		head = j;
	tail = j;
	pthread_cond_broadcast(&cv);
out:
	pthread_mutex_unlock(&mu);
	free(copy);
	if (r < 0) /* no worker: the write is done here, late rather than never */
		return statefile_write(dir, name, text);
	return 0;
}

int statefile_async_error(void)
{
	int r;

	pthread_mutex_lock(&mu);
	r = last_err;
	last_err = 0;
	pthread_mutex_unlock(&mu);
	return r;
}

void statefile_flush(void)
{
	pthread_mutex_lock(&mu);
	while (head || busy)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}
