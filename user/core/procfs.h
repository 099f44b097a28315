/* SPDX-License-Identifier: GPL-2.0 */
/* /proc parsers: who a process is, how much memory it holds, who listens on a port, how much memory the machine
 * has left. Each parser is a pure function over the file's text; the readers (procfs-read.h) take the proc root
 * ("/proc" when NULL) so tests can point them at fixtures.
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

/* --- shared helpers (also used by cgroup.c and the readers) --- */

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

/* --- identity: cmdline, comm, exe, cwd --- */

/* Turns raw cmdline bytes (NUL-separated args) into one line: NULs and control characters become spaces,
 * trailing separators are dropped, output truncated to len-1 bytes. Returns the string length. */
int procfs_cmdline_to_string(const char *raw, size_t raw_len, char *buf, size_t len);

/* Strips a trailing " (deleted)" in place (the kernel's mark for an unlinked file); returns true if it was there. */
bool procfs_strip_deleted(char *path);

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

/* --- pid namespace --- */

struct pidns_info {
	uint64_t dev;   /* st_dev of ns/pid as stat(2) returns it (nsfs) */
	uint64_t ino;   /* st_ino of ns/pid: the namespace id */
	unsigned level; /* nesting depth below the pid namespace of the proc mount: NSpid entries - 1 */
};

#endif
