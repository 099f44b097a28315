// SPDX-License-Identifier: GPL-2.0
/* /proc readers: open, read and readlink under a proc root, then the parsers of core/procfs.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "procfs.h"
#include "procfs-read.h"

static void copy_trunc(char *dst, size_t dst_len, const char *src, size_t src_len)
{
	size_t n = MIN(src_len, dst_len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool is_listener(int r, uint16_t lport, unsigned state, uint64_t inode, uint16_t port)
{
	/* A listener always has an inode; 0 means a socket without a file (TIME_WAIT, orphaned). */
	return r == 1 && state == PROCFS_TCP_LISTEN && lport == port && inode != 0;
}

/* /proc/PID/{stat,status,comm} are a few KiB at most; anything bigger is not the file we think it is. */
#define SMALL_TEXT_MAX (64u << 10)
/* How many sockets may listen on one port (SO_REUSEPORT workers, dual-stack, inherited copies share inodes). */
#define LISTEN_INODES_MAX 256
/* PID_MAX_LIMIT on 64-bit. */
#define PIDS_MAX (4u << 20)

static const char *root_or_default(const char *root)
{
	return root && *root ? root : PROCFS_DEFAULT_ROOT;
}

static int pid_path(char *buf, size_t len, const char *root, pid_t pid, const char *file)
{
	int n;

	if (pid < 0)
		return -EINVAL;
	if (pid == 0)
		n = snprintf(buf, len, "%s/self/%s", root_or_default(root), file);
	else
		n = snprintf(buf, len, "%s/%d/%s", root_or_default(root), (int)pid, file);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int procfs_read_text(const char *path, size_t max_bytes, char **ret_text, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t cap, len = 0;

	if (!path || !ret_text || max_bytes == 0 || max_bytes > SIZE_MAX / 4)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* Room for max_bytes + 1 so that an oversized file is detected, plus the NUL. */
	cap = MIN((size_t)4096, max_bytes + 2);
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (len + 1 == cap) {
			size_t ncap = MIN(cap * 2, max_bytes + 2);
			char *nbuf = realloc(buf, ncap);

			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max_bytes)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret_text = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

/* Reads root/PID/name (a small text file) whole; the caller frees *ret_text. */
static int read_pid_text(const char *root, pid_t pid, const char *name, char **ret_text, size_t *ret_len)
{
	char path[PATH_MAX];
	int r = pid_path(path, sizeof(path), root, pid, name);

	if (r < 0)
		return r;
	return procfs_read_text(path, SMALL_TEXT_MAX, ret_text, ret_len);
}

int procfs_read_stat(const char *root, pid_t pid, struct proc_stat *ret)
{
	_cleanup_free_ char *text = NULL;
	long tck;
	int r;

	if (pid <= 0 || !ret)
		return -EINVAL;
	r = read_pid_text(root, pid, "stat", &text, NULL);
	if (r < 0)
		return r;
	tck = sysconf(_SC_CLK_TCK);
	return procfs_parse_stat(text, tck > 0 ? tck : 100, ret);
}

int procfs_read_status(const char *root, pid_t pid, struct proc_status *ret)
{
	_cleanup_free_ char *text = NULL;
	int r;

	if (pid <= 0 || !ret)
		return -EINVAL;
	r = read_pid_text(root, pid, "status", &text, NULL);
	if (r < 0)
		return r;
	return procfs_parse_status(text, ret);
}

int procfs_read_cmdline(const char *root, pid_t pid, char *buf, size_t len)
{
	_cleanup_close_ int fd = -1;
	char path[PATH_MAX];
	size_t n = 0;
	int r;

	if (!buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (pid <= 0)
		return -EINVAL;
	r = pid_path(path, sizeof(path), root, pid, "cmdline");
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* cmdline can be megabytes: read only what fits. */
	while (n + 1 < len) {
		ssize_t k = read(fd, buf + n, len - 1 - n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			buf[0] = '\0';
			return r;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	return procfs_cmdline_to_string(buf, n, buf, len);
}

int procfs_read_comm(const char *root, pid_t pid, char *buf, size_t len)
{
	_cleanup_free_ char *text = NULL;
	size_t n;
	int r;

	if (!buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (pid <= 0)
		return -EINVAL;
	r = read_pid_text(root, pid, "comm", &text, &n);
	if (r < 0)
		return r;
	n = strlen(text);
	if (n > 0 && text[n - 1] == '\n')
		n--;
	copy_trunc(buf, len, text, n);
	return (int)strlen(buf);
}

static int read_pid_link(const char *root, pid_t pid, const char *name, char *buf, size_t len, bool *ret_deleted)
{
	char path[PATH_MAX];
	ssize_t n;
	bool deleted;
	int r;

	if (!buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (ret_deleted)
		*ret_deleted = false;
	if (pid <= 0)
		return -EINVAL;
	if (len > INT_MAX)
		len = INT_MAX;
	r = pid_path(path, sizeof(path), root, pid, name);
	if (r < 0)
		return r;
	n = readlink(path, buf, len);
	if (n < 0) {
		r = -errno;
		buf[0] = '\0';
		return r;
	}
	if ((size_t)n >= len) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	buf[n] = '\0';
	deleted = procfs_strip_deleted(buf);
	if (ret_deleted)
		*ret_deleted = deleted;
	return (int)strlen(buf);
}

int procfs_read_exe(const char *root, pid_t pid, char *buf, size_t len, bool *ret_deleted)
{
	return read_pid_link(root, pid, "exe", buf, len, ret_deleted);
}

int procfs_read_cwd(const char *root, pid_t pid, char *buf, size_t len, bool *ret_deleted)
{
	return read_pid_link(root, pid, "cwd", buf, len, ret_deleted);
}

/* ---------------------------------------------------------------- pid list */

static bool parse_pid_name(const char *name, pid_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (name[0] < '1' || name[0] > '9')
		return false;
	for (i = 0; name[i]; i++) {
		if (name[i] < '0' || name[i] > '9' || i >= 10)
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (v > INT_MAX)
		return false;
	*ret = (pid_t)v;
	return true;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int procfs_list_pids(const char *root, pid_t **ret, size_t *ret_n)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	if (!ret || !ret_n)
		return -EINVAL;
	*ret = NULL;
	*ret_n = 0;
	d = opendir(root_or_default(root));
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		struct stat sb;
		pid_t pid;

		if (!parse_pid_name(de->d_name, &pid))
			continue;
		if (de->d_type != DT_DIR) {
			if (de->d_type != DT_UNKNOWN)
				continue;
			if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
				continue;
		}
		if (n == PIDS_MAX)
			break;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			pid_t *np = realloc(pids, ncap * sizeof(*pids));

			if (!np) {
				closedir(d);
				return -ENOMEM;
			}
			pids = np;
			cap = ncap;
		}
		pids[n++] = pid;
	}
	if (errno) {
		int r = -errno;

		closedir(d);
		return r;
	}
	closedir(d);
	if (n > 1)
		qsort(pids, n, sizeof(*pids), cmp_pid);
	*ret = n ? TAKE_PTR(pids) : NULL;
	*ret_n = n;
	return (int)n;
}

int procfs_read_meminfo(const char *root, struct meminfo *ret)
{
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX];
	int n, r;

	if (!ret)
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s/meminfo", root_or_default(root));
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	r = procfs_read_text(path, SMALL_TEXT_MAX, &text, NULL);
	if (r < 0)
		return r;
	return procfs_parse_meminfo(text, ret);
}

int procfs_read_psi(const char *path, struct psi *ret)
{
	_cleanup_free_ char *text = NULL;
	int r;

	if (!path || !ret)
		return -EINVAL;
	r = procfs_read_text(path, SMALL_TEXT_MAX, &text, NULL);
	if (r < 0)
		return r;
	return procfs_parse_psi(text, ret);
}

/* A listener on the wanted address, or on the wildcard address, serves connections to the wanted address. */
static bool addr_serves(const struct procfs_addr *listen, const struct procfs_addr *want)
{
	static const uint8_t zero[16];

	if (!want || !want->len)
		return true;
	if (!memcmp(listen->bytes, zero, listen->len))
		return true;
	return listen->len == want->len && !memcmp(listen->bytes, want->bytes, want->len);
}

static int scan_tcp_file(const char *path, uint16_t port, const struct procfs_addr *want, uint64_t *inodes,
			 size_t max, size_t *n)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	ssize_t k;

	/* Streamed, not slurped: a busy server has tens of thousands of connections in this file. */
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while ((k = getline(&line, &cap, f)) > 0) {
		struct procfs_addr addr;
		uint16_t lport;
		unsigned state;
		uint64_t inode;
		int r;

		if (memchr(line, '\0', (size_t)k))
			return -EPROTO;
		r = procfs_parse_tcp_line_addr(line, &lport, &state, &inode, &addr);
		if (r < 0)
			return r;
		if (is_listener(r, lport, state, inode, port) && addr_serves(&addr, want) && *n < max)
			inodes[(*n)++] = inode;
	}
	if (ferror(f))
		return -EIO;
	return 0;
}

int procfs_listening_inodes(const char *root, uint16_t port, uint64_t *inodes, size_t max)
{
	return procfs_listening_inodes_on(root, port, NULL, inodes, max);
}

int procfs_listening_inodes_on(const char *root, uint16_t port, const struct procfs_addr *want, uint64_t *inodes,
			       size_t max)
{
	static const char *const files[] = { "net/tcp", "net/tcp6" };
	size_t n = 0, missing = 0;

	if (!inodes && max)
		return -EINVAL;
	max = MIN(max, (size_t)INT_MAX);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[PATH_MAX];
		int k, r;

		k = snprintf(path, sizeof(path), "%s/%s", root_or_default(root), files[i]);
		if (k < 0 || (size_t)k >= sizeof(path))
			return -ENAMETOOLONG;
		r = scan_tcp_file(path, port, want, inodes, max, &n);
		if (r == -ENOENT) {
			missing++;
			continue;
		}
		if (r < 0)
			return r;
	}
	if (missing == ARRAY_SIZE(files))
		return -ENOENT;
	return (int)n;
}

static bool socket_link_inode(const char *link, uint64_t *ret)
{
	const char *p;
	uint64_t v;

	if (strncmp(link, "socket:[", 8) != 0)
		return false;
	p = link + 8;
	if (procfs_next_u64(&p, 10, &v) < 0 || p == link + 8 || strcmp(p, "]") != 0)
		return false;
	*ret = v;
	return true;
}

int procfs_pid_has_socket_inode(const char *root, pid_t pid, const uint64_t *inodes, size_t n)
{
	char path[PATH_MAX];
	struct dirent *de;
	int r, found = 0;
	DIR *d;

	if (pid <= 0 || (!inodes && n))
		return -EINVAL;
	r = pid_path(path, sizeof(path), root, pid, "fd");
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return -errno;
	while (!found && (de = readdir(d))) {
		char link[64];
		uint64_t ino;
		ssize_t k;

		if (de->d_name[0] == '.')
			continue;
		k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (k < 0) {
			/* The fd was closed since readdir: normal. */
			if (errno == ENOENT)
				continue;
			r = -errno;
			closedir(d);
			return r;
		}
		link[k] = '\0';
		if (!socket_link_inode(link, &ino))
			continue;
		for (size_t i = 0; i < n; i++)
			if (inodes[i] == ino) {
				found = 1;
				break;
			}
	}
	closedir(d);
	return found;
}

int procfs_find_socket_owners(const char *root, const uint64_t *inodes, size_t ninodes, pid_t *ret, size_t max)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t npids, n = 0;
	int r;

	if ((!ret && max) || (!inodes && ninodes))
		return -EINVAL;
	max = MIN(max, (size_t)INT_MAX);
	if (!ninodes)
		return 0;
	r = procfs_list_pids(root, &pids, &npids);
	if (r < 0)
		return r;
	for (size_t i = 0; i < npids && n < max; i++) {
		/* Gone (-ENOENT/-ESRCH) or not ours to look at (-EACCES): neither is the owner we can act on. */
		if (procfs_pid_has_socket_inode(root, pids[i], inodes, ninodes) == 1)
			ret[n++] = pids[i];
	}
	return (int)n;
}

int procfs_find_port_owners(const char *root, uint16_t port, pid_t *ret, size_t max)
{
	uint64_t inodes[LISTEN_INODES_MAX];
	int ninodes;

	if (!ret && max)
		return -EINVAL;
	ninodes = procfs_listening_inodes(root, port, inodes, ARRAY_SIZE(inodes));
	if (ninodes <= 0)
		return ninodes;
	return procfs_find_socket_owners(root, inodes, (size_t)ninodes, ret, max);
}

/* ---------------------------------------------------------------- pid namespace */

int procfs_read_pidns(const char *root, pid_t pid, struct pidns_info *ret)
{
	_cleanup_free_ char *text = NULL;
	struct proc_status st;
	char path[PATH_MAX];
	struct stat sb;
	int r;

	if (!ret || pid < 0)
		return -EINVAL;
	r = pid_path(path, sizeof(path), root, pid, "ns/pid");
	if (r < 0)
		return r;
	if (stat(path, &sb) < 0)
		return -errno;
	r = read_pid_text(root, pid, "status", &text, NULL);
	if (r < 0)
		return r;
	r = procfs_parse_status(text, &st);
	if (r < 0)
		return r;
	ret->dev = (uint64_t)sb.st_dev;
	ret->ino = (uint64_t)sb.st_ino;
	ret->level = st.nspid_count > 1 ? (unsigned)(st.nspid_count - 1) : 0;
	return 0;
}

int procfs_self_pidns(struct pidns_info *ret)
{
	return procfs_read_pidns(NULL, 0, ret);
}
