// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cgroup-read.h"
#include "common.h"
#include "pidfile.h"
#include "procfs-read.h"

int pidfile_parse(const char *text, size_t len, pid_t *ret)
{
	size_t i = 0;
	long long v = 0;
	bool any = false;

	if (!text || !ret)
		return -EINVAL;
	while (i < len && (text[i] == ' ' || text[i] == '\t'))
		i++;
	for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
		v = v * 10 + (text[i] - '0');
		if (v > INT_MAX)
			return -EINVAL;
		any = true;
	}
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
		i++;
	if (!any || i != len || v <= 1)
		return -EINVAL;
	*ret = (pid_t)v;
	return 0;
}

static bool cgroup_is_or_under(const char *dir, const char *want)
{
	size_t n = strlen(want);

	while (n > 1 && want[n - 1] == '/')
		n--;
	return n && !strncmp(dir, want, n) && (dir[n] == 0 || dir[n] == '/');
}

/* Which configured property proves pid is the server; NULL when none does. */
static const char *matches(pid_t pid, const struct pidfile_expect *w, uid_t *ret_uid)
{
	struct proc_status ss;
	char buf[512];
	uint64_t inodes[64];
	int n;

	if (procfs_read_status(w->proc_root, pid, &ss) < 0)
		return NULL;
	*ret_uid = ss.uid_real;
	if (w->cmdline_pattern && w->cmdline_pattern[0] &&
	    procfs_read_cmdline(w->proc_root, pid, buf, sizeof(buf)) > 0 && strstr(buf, w->cmdline_pattern))
		return "cmdline pattern";
	if (w->port) {
		n = w->addr ? procfs_listening_inodes_on(w->proc_root, w->port, w->addr, inodes, ARRAY_SIZE(inodes)) :
			      procfs_listening_inodes(w->proc_root, w->port, inodes, ARRAY_SIZE(inodes));
		if (n > 0 && procfs_pid_has_socket_inode(w->proc_root, pid, inodes, (size_t)n) > 0)
			return "port";
	}
	if (w->cgroup_dir && w->cgroup_dir[0] && w->mounts &&
	    cg_pid_memory_dir(w->proc_root, pid, w->mounts, buf, sizeof(buf), NULL) == 0 &&
	    cgroup_is_or_under(buf, w->cgroup_dir))
		return "cgroup";
	return NULL;
}

int pidfile_read_server(const char *path, const struct pidfile_expect *want, char *why, size_t whylen)
{
	_cleanup_close_ int fd = -1;
	char text[PIDFILE_MAX_BYTES + 1];
	struct proc_stat st;
	struct stat fst;
	ssize_t n;
	pid_t pid;
	uid_t uid = 0;
	int r;

	if (!path || !want)
		return -EINVAL;
	snprintf(why, whylen, "unread");
	/* O_NONBLOCK: a FIFO with no writer would otherwise stop the whole daemon in open() */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", r == -ELOOP ? "it is a symbolic link" : strerror(-r));
		return r == -ELOOP ? -ELOOP : r;
	}
	if (fstat(fd, &fst) < 0)
		return -errno;
	if (!S_ISREG(fst.st_mode)) {
		snprintf(why, whylen, "it is not a regular file");
		return -EBADF;
	}
	if (fst.st_mode & 0002) {
		snprintf(why, whylen, "anyone may write it");
		return -EPERM;
	}
	n = read(fd, text, PIDFILE_MAX_BYTES + 1);
	if (n < 0)
		return -errno;
	if (n > PIDFILE_MAX_BYTES || pidfile_parse(text, (size_t)n, &pid) < 0) {
		snprintf(why, whylen, "it holds no pid");
		return -EINVAL;
	}
	if (procfs_read_stat(want->proc_root, pid, &st) < 0 || st.state == 'Z') {
		snprintf(why, whylen, "pid %d is not running (a stale file)", pid);
		return -ESRCH;
	}
	const char *how = matches(pid, want, &uid);
	if (!how) {
		snprintf(why, whylen, "pid %d matches neither the cmdline pattern, the URL's port nor the cgroup", pid);
		return -EACCES;
	}
	/* whoever may write the file chooses what gets signalled: only root or the server's own user */
	if (fst.st_uid != 0 && fst.st_uid != uid) {
		snprintf(why, whylen, "its owner uid %u is neither root nor the server's uid %u", (unsigned)fst.st_uid,
			 (unsigned)uid);
		return -EPERM;
	}
	snprintf(why, whylen, "pid %d, matched by its %s", pid, how);
	return pid;
}
