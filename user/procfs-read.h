/* SPDX-License-Identifier: GPL-2.0 */
/* /proc readers: each takes the proc root ("/proc" when NULL) so tests can point it at fixtures, reads the file and
 * hands its text to the parsers of core/procfs.h (whose return contract they share). */
#ifndef OOMSENTRY_PROCFS_READ_H
#define OOMSENTRY_PROCFS_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "procfs.h"

/* --- whole files (also used by cgroup-read.c) --- */

/* Reads the whole file at path into a malloc'd NUL-terminated buffer (*ret_text, caller frees); *ret_len (may be
 * NULL) gets the byte count without the NUL. Files larger than max_bytes give -EFBIG. */
int procfs_read_text(const char *path, size_t max_bytes, char **ret_text, size_t *ret_len);

/* --- /proc/PID/stat --- */

int procfs_read_stat(const char *root, pid_t pid, struct proc_stat *ret);

/* --- /proc/PID/status --- */

int procfs_read_status(const char *root, pid_t pid, struct proc_status *ret);

/* --- identity: cmdline, comm, exe, cwd --- */

/* Empty string (0) for kernel threads and zombies. Returns the string length. */
int procfs_read_cmdline(const char *root, pid_t pid, char *buf, size_t len);
/* /proc/PID/comm without the newline. Returns the string length. */
int procfs_read_comm(const char *root, pid_t pid, char *buf, size_t len);
/* readlink of /proc/PID/exe or /proc/PID/cwd, " (deleted)" stripped and reported in *ret_deleted (may be NULL).
 * -ENAMETOOLONG when buf cannot hold the whole path (a truncated path would be misleading); -ENOENT for kernel
 * threads. Returns the string length. */
int procfs_read_exe(const char *root, pid_t pid, char *buf, size_t len, bool *ret_deleted);
int procfs_read_cwd(const char *root, pid_t pid, char *buf, size_t len, bool *ret_deleted);

/* --- process list --- */

/* Numeric directories of root, sorted ascending, in a malloc'd array (*ret, caller frees; NULL when empty).
 * Returns the count (also in *ret_n). */
int procfs_list_pids(const char *root, pid_t **ret, size_t *ret_n);

/* --- machine memory --- */

int procfs_read_meminfo(const char *root, struct meminfo *ret);

/* --- pressure stall information --- */

/* Takes a full path. -ENOENT when the file is absent (kernel without PSI); -EOPNOTSUPP when PSI is disabled. */
int procfs_read_psi(const char *path, struct psi *ret);

/* --- listening sockets --- */

/* Same over root/net/tcp and root/net/tcp6 (tcp6 may be absent: IPv6 disabled). Note /proc/net is the
 * network namespace of the reader. */
int procfs_listening_inodes(const char *root, uint16_t port, uint64_t *inodes, size_t max);
/* The same, only listeners that serve connections to *want: on that address or on the wildcard (want NULL or
 * len 0: all). */
int procfs_listening_inodes_on(const char *root, uint16_t port, const struct procfs_addr *want, uint64_t *inodes,
			       size_t max);
/* 1 when one of root/PID/fd/N links to "socket:[I]" for an I in inodes, 0 when none, negative on error
 * (-EACCES without CAP_SYS_PTRACE on another user's process). */
int procfs_pid_has_socket_inode(const char *root, pid_t pid, const uint64_t *inodes, size_t n);
/* Pids (ascending, at most max stored) holding a socket that listens on port; a forked child that inherited the
 * socket counts too, which is how orphans holding the ComfyUI port are found. Processes that vanish or deny
 * access are skipped. Returns the number stored. */
int procfs_find_port_owners(const char *root, uint16_t port, pid_t *ret, size_t max);
/* The same for sockets already known by inode (sock_diag's listeners): only the fd walk. */
int procfs_find_socket_owners(const char *root, const uint64_t *inodes, size_t ninodes, pid_t *ret, size_t max);

/* --- pid namespace --- */

/* For root/PID (pid 0: root/self). */
int procfs_read_pidns(const char *root, pid_t pid, struct pidns_info *ret);
/* /proc/self: what bpf_get_ns_current_pid_tgid() needs to report pids in our namespace. */
int procfs_self_pidns(struct pidns_info *ret);

#endif
