/* SPDX-License-Identifier: GPL-2.0 */
/* /proc parsers: who a process is, how much memory it holds, who listens on a port, how much memory the machine
 * has left. Each parser is a pure function over the file's text; each reader takes the proc root ("/proc" when
 * NULL) so tests can point it at fixtures.
 *
 * Return contract (all functions): >= 0 on success (0 or a count/length), negative errno on failure:
 *   -EINVAL   bad argument (NULL pointer, pid <= 0, zero-sized buffer)
 *   -EPROTO   the text does not have the expected format (missing field, non-numeric value)
 *   -ERANGE   a number does not fit its field
 *   -ENOENT / -ESRCH  the process (or file) is gone: a normal race, not worth a warning
 *   other     whatever open/read/readlink/opendir returned (-EACCES, ...)
 * Strings are copied into caller buffers and always NUL-terminated; too-small buffers truncate safely. */
#ifndef OOMSENTRY_PROCFS_H
#define OOMSENTRY_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCFS_DEFAULT_ROOT "/proc"
/* TASK_COMM_LEN is 16, but workqueue workers show longer names ("kworker/u8:2-events_unbound"). */
#define PROCFS_COMM_LEN 64
/* MAX_PID_NS_LEVEL (32) + 1: one pid per level, init_pid_ns included. */
#define PROCFS_NSPID_MAX 33
/* Files we slurp whole are capped; a /proc file bigger than this is not what we expect. */
#define PROCFS_TEXT_MAX (4u << 20)

/* --- shared helpers (also used by cgroup.c) --- */

/* Reads the whole file at path into a malloc'd NUL-terminated buffer (*ret_text, caller frees); *ret_len (may be
 * NULL) gets the byte count without the NUL. Files larger than max_bytes give -EFBIG. */
int procfs_read_text(const char *path, size_t max_bytes, char **ret_text, size_t *ret_len);

/* Parses an unsigned number at *pos after skipping spaces and tabs (never newlines), in base 10 or 16, and moves
 * *pos past it. A sign, an empty number or a "0x" prefix is -EPROTO; overflow is -ERANGE. */
int procfs_next_u64(const char **pos, int base, uint64_t *ret);

/* Yields the next line of text at *pos (without its '\n') and moves *pos past it; false at the end. */
bool procfs_next_line(const char **pos, const char **ret_line, size_t *ret_len);

/* --- /proc/PID/stat --- */

struct proc_stat {
	pid_t pid;
	char comm[PROCFS_COMM_LEN]; /* as the kernel prints it, may hold spaces and ')' */
	char state;                 /* 'R', 'S', 'D', 'Z', ... */
	pid_t ppid;
	pid_t pgrp;
	pid_t session;
	int tty_nr;
	unsigned int flags;    /* PF_* */
	uint64_t utime_ticks;  /* clock ticks (sysconf(_SC_CLK_TCK)) */
	uint64_t stime_ticks;
	int64_t num_threads;
	uint64_t starttime_ticks; /* clock ticks since boot */
	uint64_t start_ns;        /* starttime in ns since boot (CLOCK_BOOTTIME) */
	uint64_t vsize_bytes;
	uint64_t rss_pages; /* resident pages (sysconf(_SC_PAGESIZE)) */
};

/* clk_tck > 0 converts starttime to start_ns. Parses comm up to the LAST ')' so any comm is safe. */
int procfs_parse_stat(const char *text, long clk_tck, struct proc_stat *ret);
int procfs_read_stat(const char *root, pid_t pid, struct proc_stat *ret);

/* --- /proc/PID/status --- */

struct proc_status {
	char name[PROCFS_COMM_LEN]; /* "Name:", kernel-escaped ("\n" for a newline) */
	pid_t tgid;
	pid_t ppid;
	uid_t uid_real;
	uid_t uid_effective;
	pid_t nspid[PROCFS_NSPID_MAX]; /* nspid[0]: pid in the namespace of the proc mount, last: innermost */
	size_t nspid_count;            /* 0 on kernels without NSpid (< 4.1) */
	bool has_memory;               /* false for kernel threads and zombies: no Vm* lines */
	uint64_t vm_rss_bytes;
	uint64_t rss_anon_bytes;
	uint64_t rss_file_bytes;
	uint64_t rss_shmem_bytes;
	uint64_t vm_swap_bytes;
};

/* Name, Tgid, PPid and Uid are required (-EPROTO without them); memory lines are optional. */
int procfs_parse_status(const char *text, struct proc_status *ret);
int procfs_read_status(const char *root, pid_t pid, struct proc_status *ret);

/* --- identity: cmdline, comm, exe, cwd --- */

/* Turns raw cmdline bytes (NUL-separated args) into one line: NULs and control characters become spaces,
 * trailing separators are dropped, output truncated to len-1 bytes. Returns the string length. */
int procfs_cmdline_to_string(const char *raw, size_t raw_len, char *buf, size_t len);
/* Empty string (0) for kernel threads and zombies. Returns the string length. */
int procfs_read_cmdline(const char *root, pid_t pid, char *buf, size_t len);
/* /proc/PID/comm without the newline. Returns the string length. */
int procfs_read_comm(const char *root, pid_t pid, char *buf, size_t len);

/* Strips a trailing " (deleted)" in place (the kernel's mark for an unlinked file); returns true if it was there. */
bool procfs_strip_deleted(char *path);
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

struct meminfo {
	uint64_t mem_total_bytes;
	uint64_t mem_available_bytes; /* MemFree when the kernel has no MemAvailable (< 3.14) */
	uint64_t swap_total_bytes;
	uint64_t swap_free_bytes;
	bool has_mem_available;
};

/* MemTotal is required; the rest default to 0. */
int procfs_parse_meminfo(const char *text, struct meminfo *ret);
int procfs_read_meminfo(const char *root, struct meminfo *ret);

/* --- pressure stall information --- */

struct psi_line {
	double avg10; /* percent of wall time stalled, 0..100 */
	double avg60;
	double avg300;
	uint64_t total_us; /* cumulative stall time */
};

struct psi {
	struct psi_line some; /* at least one task stalled */
	struct psi_line full; /* all non-idle tasks stalled */
	bool has_full;        /* system-wide cpu PSI had no "full" line before 5.13 */
};

/* /proc/pressure/{memory,cpu,io} and cgroup2 *.pressure. "some" is required. Averages are parsed without
 * strtod so the result does not depend on the locale. */
int procfs_parse_psi(const char *text, struct psi *ret);
/* Takes a full path. -ENOENT when the file is absent (kernel without PSI); -EOPNOTSUPP when PSI is disabled. */
int procfs_read_psi(const char *path, struct psi *ret);

/* --- listening sockets --- */

#define PROCFS_TCP_LISTEN 0x0A

/* An IPv4 (len 4) or IPv6 (len 16) address in network byte order; len 0: any. */
struct procfs_addr {
	uint8_t bytes[16];
	uint8_t len;
};

/* "127.0.0.1", "::1", "[::1]", "localhost"; -EINVAL for a name (nothing to match on). */
int procfs_addr_from_host(const char *host, struct procfs_addr *ret);

/* One data line of /proc/net/tcp or tcp6. Returns 1 for a socket line, 0 for the header or a blank line. */
int procfs_parse_tcp_line(const char *line, uint16_t *ret_local_port, unsigned int *ret_state, uint64_t *ret_inode);
/* The same, with the local address (ret_addr may be NULL). */
int procfs_parse_tcp_line_addr(const char *line, uint16_t *ret_local_port, unsigned int *ret_state,
			       uint64_t *ret_inode, struct procfs_addr *ret_addr);
/* Inodes of sockets in LISTEN on local port `port` in a whole tcp/tcp6 file. Stores at most max; returns the
 * number stored. */
int procfs_parse_tcp_listeners(const char *text, uint16_t port, uint64_t *inodes, size_t max);
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

/* --- pid namespace --- */

struct pidns_info {
	uint64_t dev;   /* st_dev of ns/pid as stat(2) returns it (nsfs) */
	uint64_t ino;   /* st_ino of ns/pid: the namespace id */
	unsigned level; /* nesting depth below the pid namespace of the proc mount: NSpid entries - 1 */
};

/* For root/PID (pid 0: root/self). */
int procfs_read_pidns(const char *root, pid_t pid, struct pidns_info *ret);
/* /proc/self: what bpf_get_ns_current_pid_tgid() needs to report pids in our namespace. */
int procfs_self_pidns(struct pidns_info *ret);

#endif
