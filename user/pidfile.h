/* SPDX-License-Identifier: GPL-2.0 */
/* The configured pid_file, read as a root daemon must read a file someone else may control: without following a
 * link, without blocking on a FIFO, only a regular file owned by root or by the server's user, and only a pid that
 * is provably the instance's server (its cmdline pattern, its port on the URL's address, or its cgroup). */
#ifndef OOMSENTRY_PIDFILE_H
#define OOMSENTRY_PIDFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "cgroup.h"
#include "procfs.h"

#define PIDFILE_MAX_BYTES 64

/* Parses the text of a pid file: one decimal pid > 1 with optional surrounding whitespace. 0 or -EINVAL. */
int pidfile_parse(const char *text, size_t len, pid_t *ret);

/* What the named process must match, any one of which suffices. */
struct pidfile_expect {
	const char *proc_root;          /* "/proc" */
	const char *cmdline_pattern;    /* "" / NULL: not configured */
	uint16_t port;                  /* 0: none */
	const struct procfs_addr *addr; /* the URL's address; NULL: any address on the port */
	const char *cgroup_dir;         /* "" / NULL: not configured */
	const struct cg_mounts *mounts; /* to read the pid's cgroup; NULL: cgroup not checked */
};

/* Reads path and checks the file and the pid. Returns the pid (> 1), or a negative errno with one sentence in why:
 * -ELOOP (a symlink), -EBADF (not a regular file), -EPERM (owner or mode), -EINVAL (no pid in it), -ESRCH (no
 * such process: fall through to the port), -EACCES (the process is not the server). */
int pidfile_read_server(const char *path, const struct pidfile_expect *want, char *why, size_t whylen);

#endif
