// SPDX-License-Identifier: GPL-2.0
/* /proc text parsers: pure functions over a file's text (procfs-read.c reads the files). */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "procfs.h"

static void copy_trunc(char *dst, size_t dst_len, const char *src, size_t src_len)
{
	size_t n = MIN(src_len, dst_len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool is_field_end(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\0';
}

static const char *line_end(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? nl : p + strlen(p);
}

bool procfs_next_line(const char **pos, const char **ret_line, size_t *ret_len)
{
	const char *p = *pos, *e;

	if (!*p)
		return false;
	e = line_end(p);
	*ret_line = p;
	*ret_len = (size_t)(e - p);
	*pos = *e ? e + 1 : e;
	return true;
}

static bool line_has_prefix(const char *line, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(line, prefix, n) == 0;
}

int procfs_next_u64(const char **pos, int base, uint64_t *ret)
{
	const char *p;
	char *end;
	unsigned long long v;

	if (!pos || !*pos || !ret || (base != 10 && base != 16))
		return -EINVAL;
	p = *pos;
	while (*p == ' ' || *p == '\t')
		p++;
	/* strtoull would accept a sign ("-1" wraps to UINT64_MAX), leading newlines and "0x". */
	if (base == 10 ? !isdigit((unsigned char)*p) : !isxdigit((unsigned char)*p))
		return -EPROTO;
	if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return -EPROTO;
	errno = 0;
	v = strtoull(p, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end == p)
		return -EPROTO;
	*ret = v;
	*pos = end;
	return 0;
}

/* A decimal number with an optional '-' that must end at a field boundary. */
static int next_i64(const char **pos, int64_t *ret)
{
	const char *p = *pos;
	bool neg = false;
	uint64_t v;
	int r;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-') {
		neg = true;
		p++;
		if (!isdigit((unsigned char)*p))
			return -EPROTO;
	}
	r = procfs_next_u64(&p, 10, &v);
	if (r < 0)
		return r;
	if (!is_field_end(*p))
		return -EPROTO;
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > INT64_MAX)
			return -ERANGE;
		*ret = (int64_t)v;
	}
	*pos = p;
	return 0;
}

static int next_u64_field(const char **pos, uint64_t *ret)
{
	const char *p = *pos;
	int r = procfs_next_u64(&p, 10, ret);

	if (r < 0)
		return r;
	if (!is_field_end(*p))
		return -EPROTO;
	*pos = p;
	return 0;
}

/* A "N kB" value as in status and meminfo, in bytes. */
static int next_kb_bytes(const char **pos, uint64_t *ret)
{
	const char *p = *pos;
	uint64_t kb;
	int r;

	r = procfs_next_u64(&p, 10, &kb);
	if (r < 0)
		return r;
	while (*p == ' ' || *p == '\t')
		p++;
	if (p[0] != 'k' || p[1] != 'B' || !is_field_end(p[2]))
		return -EPROTO;
	if (kb > UINT64_MAX / 1024)
		return -ERANGE;
	*ret = kb * 1024;
	*pos = p + 2;
	return 0;
}

static int i64_to_pid(int64_t v, bool allow_zero, pid_t *ret)
{
	if (v < (allow_zero ? 0 : 1) || v > INT_MAX)
		return -ERANGE;
	*ret = (pid_t)v;
	return 0;
}

/* ---------------------------------------------------------------- stat */

static int ticks_to_ns(uint64_t ticks, long clk_tck, uint64_t *ret)
{
	uint64_t q = ticks / (uint64_t)clk_tck, rem = ticks % (uint64_t)clk_tck, ns;

	if (__builtin_mul_overflow(q, NSEC_PER_SEC, &ns))
		return -ERANGE;
	/* rem < clk_tck, and clk_tck is small (100), so rem * 1e9 cannot overflow unless clk_tck is absurd. */
	if (rem > UINT64_MAX / NSEC_PER_SEC)
		return -ERANGE;
	if (__builtin_add_overflow(ns, rem * NSEC_PER_SEC / (uint64_t)clk_tck, &ns))
		return -ERANGE;
	*ret = ns;
	return 0;
}

int procfs_parse_stat(const char *text, long clk_tck, struct proc_stat *ret)
{
	/* Field numbers as in proc(5); we need up to rss (24). */
	enum { F_PPID = 4, F_PGRP, F_SESSION, F_TTY, F_TPGID, F_FLAGS, F_UTIME = 14, F_STIME = 15,
	       F_THREADS = 20, F_START = 22, F_VSIZE = 23, F_RSS = 24, F_LAST = F_RSS };
	struct proc_stat st = {0};
	int64_t v[F_LAST + 1] = {0}, pid;
	const char *p = text, *open, *close;
	int r;

	if (!text || !ret || clk_tck <= 0)
		return -EINVAL;
	r = next_i64(&p, &pid);
	if (r < 0)
		return r;
	r = i64_to_pid(pid, false, &st.pid);
	if (r < 0)
		return r;
	if (p[0] != ' ' || p[1] != '(')
		return -EPROTO;
	open = p + 1;
	/* comm is whatever the process chose (prctl, /proc/self/comm) and may contain ") (": only the last ')' ends it. */
	close = strrchr(open, ')');
	if (!close)
		return -EPROTO;
	copy_trunc(st.comm, sizeof(st.comm), open + 1, (size_t)(close - open - 1));
	p = close + 1;
	if (p[0] != ' ' || !isalpha((unsigned char)p[1]) || p[2] != ' ')
		return -EPROTO;
	st.state = p[1];
	p += 2;
	for (int f = F_PPID; f <= F_LAST; f++) {
		uint64_t u;

		/* Unsigned fields may exceed INT64_MAX (e.g. vsize is unsigned long); the others are signed. */
		if (f == F_VSIZE || f == F_RSS || f == F_START || f == F_UTIME || f == F_STIME || f == F_FLAGS) {
			r = next_u64_field(&p, &u);
			if (r < 0)
				return r;
			v[f] = 0;
			if (f == F_VSIZE)
				st.vsize_bytes = u;
			else if (f == F_RSS)
				st.rss_pages = u;
			else if (f == F_START)
				st.starttime_ticks = u;
			else if (f == F_UTIME)
				st.utime_ticks = u;
			else if (f == F_STIME)
				st.stime_ticks = u;
			else if (u > UINT_MAX)
				return -ERANGE;
			else
				st.flags = (unsigned int)u;
		} else {
			r = next_i64(&p, &v[f]);
			if (r < 0)
				return r;
		}
	}
	r = i64_to_pid(v[F_PPID], true, &st.ppid);
	if (r < 0)
		return r;
	r = i64_to_pid(v[F_PGRP], true, &st.pgrp);
	if (r < 0)
		return r;
	r = i64_to_pid(v[F_SESSION], true, &st.session);
	if (r < 0)
		return r;
	if (v[F_TTY] < INT_MIN || v[F_TTY] > INT_MAX)
		return -ERANGE;
	st.tty_nr = (int)v[F_TTY];
	if (v[F_THREADS] < 0)
		return -ERANGE;
	st.num_threads = v[F_THREADS];
	r = ticks_to_ns(st.starttime_ticks, clk_tck, &st.start_ns);
	if (r < 0)
		return r;
	*ret = st;
	return 0;
}

/* ---------------------------------------------------------------- status */

static int status_pid(const char *p, bool allow_zero, pid_t *ret)
{
	int64_t v;
	int r = next_i64(&p, &v);

	if (r < 0)
		return r;
	return i64_to_pid(v, allow_zero, ret);
}

static int status_uid(const char **p, uid_t *ret)
{
	uint64_t v;
	int r = next_u64_field(p, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uid_t)v;
	return 0;
}

int procfs_parse_status(const char *text, struct proc_status *ret)
{
	struct proc_status st = {0};
	bool has_name = false, has_tgid = false, has_ppid = false, has_uid = false;
	const char *pos = text, *line;
	size_t len;
	int r = 0;

	if (!text || !ret)
		return -EINVAL;
	while (procfs_next_line(&pos, &line, &len)) {
		const char *v;

		if (line_has_prefix(line, len, "Name:")) {
			/* The kernel writes "Name:\t" then the escaped comm; a comm may start with a space. */
			v = line + 5;
			if (v < line + len && *v == '\t')
				v++;
			copy_trunc(st.name, sizeof(st.name), v, (size_t)(line + len - v));
			has_name = true;
		} else if (line_has_prefix(line, len, "Tgid:")) {
			r = status_pid(line + 5, false, &st.tgid);
			has_tgid = true;
		} else if (line_has_prefix(line, len, "PPid:")) {
			r = status_pid(line + 5, true, &st.ppid);
			has_ppid = true;
		} else if (line_has_prefix(line, len, "Uid:")) {
			v = line + 4;
			r = status_uid(&v, &st.uid_real);
			if (r >= 0)
				r = status_uid(&v, &st.uid_effective);
			has_uid = true;
		} else if (line_has_prefix(line, len, "NSpid:")) {
			v = line + 6;
			st.nspid_count = 0;
			for (;;) {
				int64_t n;

				while (*v == ' ' || *v == '\t')
					v++;
				if (*v == '\n' || *v == '\0')
					break;
				if (st.nspid_count == PROCFS_NSPID_MAX) {
					r = -ERANGE;
					break;
				}
				r = next_i64(&v, &n);
				if (r >= 0)
					r = i64_to_pid(n, false, &st.nspid[st.nspid_count++]);
				if (r < 0)
					break;
			}
			if (r >= 0 && st.nspid_count == 0)
				r = -EPROTO;
		} else if (line_has_prefix(line, len, "VmRSS:")) {
			v = line + 6;
			r = next_kb_bytes(&v, &st.vm_rss_bytes);
			st.has_memory = true;
		} else if (line_has_prefix(line, len, "RssAnon:")) {
			v = line + 8;
			r = next_kb_bytes(&v, &st.rss_anon_bytes);
		} else if (line_has_prefix(line, len, "RssFile:")) {
			v = line + 8;
			r = next_kb_bytes(&v, &st.rss_file_bytes);
		} else if (line_has_prefix(line, len, "RssShmem:")) {
			v = line + 9;
			r = next_kb_bytes(&v, &st.rss_shmem_bytes);
		} else if (line_has_prefix(line, len, "VmSwap:")) {
			v = line + 7;
			r = next_kb_bytes(&v, &st.vm_swap_bytes);
		}
		if (r < 0)
			return r;
	}
	if (!has_name || !has_tgid || !has_ppid || !has_uid)
		return -EPROTO;
	*ret = st;
	return 0;
}

/* ---------------------------------------------------------------- cmdline, comm, exe, cwd */

int procfs_cmdline_to_string(const char *raw, size_t raw_len, char *buf, size_t len)
{
	size_t o = 0;

	if (!buf || len == 0 || (!raw && raw_len))
		return -EINVAL;
	if (len > INT_MAX)
		len = INT_MAX;
	/* In place (raw == buf) is fine: we never write ahead of what we read. */
	for (size_t i = 0; i < raw_len && o + 1 < len; i++) {
		unsigned char c = (unsigned char)raw[i];

		buf[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	while (o > 0 && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
	return (int)o;
}

bool procfs_strip_deleted(char *path)
{
	static const char suffix[] = " (deleted)";
	size_t n, k = sizeof(suffix) - 1;

	if (!path)
		return false;
	n = strlen(path);
	if (n <= k || strcmp(path + n - k, suffix) != 0)
		return false;
	path[n - k] = '\0';
	return true;
}

/* ---------------------------------------------------------------- meminfo */

int procfs_parse_meminfo(const char *text, struct meminfo *ret)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "MemTotal:", offsetof(struct meminfo, mem_total_bytes) },
		{ "MemFree:", SIZE_MAX },
		{ "MemAvailable:", offsetof(struct meminfo, mem_available_bytes) },
		{ "SwapTotal:", offsetof(struct meminfo, swap_total_bytes) },
		{ "SwapFree:", offsetof(struct meminfo, swap_free_bytes) },
	};
	struct meminfo mi = {0};
	uint64_t mem_free = 0;
	bool has_total = false;
	const char *pos = text, *line;
	size_t len;

	if (!text || !ret)
		return -EINVAL;
	while (procfs_next_line(&pos, &line, &len)) {
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			const char *v;
			uint64_t *dst;
			int r;

			if (!line_has_prefix(line, len, keys[i].key))
				continue;
			dst = keys[i].off == SIZE_MAX ? &mem_free : (uint64_t *)((char *)&mi + keys[i].off);
			v = line + strlen(keys[i].key);
			r = next_kb_bytes(&v, dst);
			if (r < 0)
				return r;
			if (dst == &mi.mem_total_bytes)
				has_total = true;
			else if (dst == &mi.mem_available_bytes)
				mi.has_mem_available = true;
			break;
		}
	}
	if (!has_total)
		return -EPROTO;
	/* Before 3.14: MemFree undercounts what is reclaimable, which errs on the safe side for an OOM guard. */
	if (!mi.has_mem_available)
		mi.mem_available_bytes = mem_free;
	*ret = mi;
	return 0;
}

/* ---------------------------------------------------------------- PSI */

/* "12.34": the kernel prints LOAD_INT.LOAD_FRAC; strtod would depend on LC_NUMERIC. */
static int parse_percent(const char **pos, double *ret)
{
	const char *p = *pos;
	uint64_t ip, frac = 0, scale = 1;
	int r;

	r = procfs_next_u64(&p, 10, &ip);
	if (r < 0)
		return r;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EPROTO;
		for (int digits = 0; isdigit((unsigned char)*p); p++, digits++) {
			if (digits == 9)
				return -EPROTO;
			frac = frac * 10 + (uint64_t)(*p - '0');
			scale *= 10;
		}
	}
	if (!is_field_end(*p))
		return -EPROTO;
	if (ip > 100)
		return -ERANGE;
	*ret = (double)ip + (double)frac / (double)scale;
	*pos = p;
	return 0;
}

static int parse_psi_line(const char *p, struct psi_line *ret)
{
	static const char *const avg_keys[] = { "avg10=", "avg60=", "avg300=" };
	double *avgs[] = { &ret->avg10, &ret->avg60, &ret->avg300 };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(avg_keys); i++) {
		size_t k = strlen(avg_keys[i]);

		while (*p == ' ')
			p++;
		if (strncmp(p, avg_keys[i], k) != 0)
			return -EPROTO;
		p += k;
		r = parse_percent(&p, avgs[i]);
		if (r < 0)
			return r;
	}
	while (*p == ' ')
		p++;
	if (strncmp(p, "total=", 6) != 0)
		return -EPROTO;
	p += 6;
	return next_u64_field(&p, &ret->total_us);
}

int procfs_parse_psi(const char *text, struct psi *ret)
{
	struct psi psi = {0};
	bool has_some = false;
	const char *pos = text, *line;
	size_t len;
	int r;

	if (!text || !ret)
		return -EINVAL;
	while (procfs_next_line(&pos, &line, &len)) {
		if (line_has_prefix(line, len, "some ")) {
			r = parse_psi_line(line + 5, &psi.some);
			has_some = true;
		} else if (line_has_prefix(line, len, "full ")) {
			r = parse_psi_line(line + 5, &psi.full);
			psi.has_full = true;
		} else {
			continue;
		}
		if (r < 0)
			return r;
	}
	if (!has_some)
		return -EPROTO;
	*ret = psi;
	return 0;
}

/* ---------------------------------------------------------------- sockets */

#define TCP_TOKENS 10

static bool all_xdigits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

static int token_u64(const char *s, size_t n, int base, uint64_t *ret)
{
	char tmp[32];
	const char *p = tmp;
	int r;

	if (n == 0 || n >= sizeof(tmp))
		return -EPROTO;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	r = procfs_next_u64(&p, base, ret);
	if (r < 0)
		return r;
	return *p ? -EPROTO : 0;
}

/* The kernel prints each 32-bit word of the address as a host-order hex number. */
static void tcp_addr_bytes(const char *hex, size_t hexlen, struct procfs_addr *ret)
{
	ret->len = (uint8_t)(hexlen / 2);
	for (size_t w = 0; w < hexlen / 8; w++) {
		uint32_t v = 0;

		for (size_t i = 0; i < 8; i++) {
			char c = hex[w * 8 + i];
			v = v << 4 | (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
		}
		memcpy(ret->bytes + w * 4, &v, 4);
	}
}

int procfs_parse_tcp_line(const char *line, uint16_t *ret_local_port, unsigned int *ret_state, uint64_t *ret_inode)
{
	return procfs_parse_tcp_line_addr(line, ret_local_port, ret_state, ret_inode, NULL);
}

int procfs_parse_tcp_line_addr(const char *line, uint16_t *ret_local_port, unsigned int *ret_state,
			       uint64_t *ret_inode, struct procfs_addr *ret_addr)
{
	const char *tok[TCP_TOKENS], *p, *end, *colon;
	size_t tlen[TCP_TOKENS], ntok = 0, alen;
	uint64_t port, state, inode;
	int r;

	if (!line || !ret_local_port || !ret_state || !ret_inode)
		return -EINVAL;
	end = line_end(line);
	for (p = line; p < end && ntok < TCP_TOKENS;) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			break;
		tok[ntok] = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		tlen[ntok] = (size_t)(p - tok[ntok]);
		ntok++;
	}
	if (ntok == 0)
		return 0;
	if (tlen[0] == 2 && memcmp(tok[0], "sl", 2) == 0)
		return 0;
	if (ntok < TCP_TOKENS)
		return -EPROTO;
	/* "N:" slot number */
	if (tlen[0] < 2 || tok[0][tlen[0] - 1] != ':')
		return -EPROTO;
	/* local address: 8 (IPv4) or 32 (IPv6) hex digits, ':', 4 hex digits of port */
	colon = memchr(tok[1], ':', tlen[1]);
	if (!colon)
		return -EPROTO;
	alen = (size_t)(colon - tok[1]);
	if ((alen != 8 && alen != 32) || !all_xdigits(tok[1], alen) || tlen[1] != alen + 5 ||
	    !all_xdigits(colon + 1, 4))
		return -EPROTO;
	r = token_u64(colon + 1, 4, 16, &port);
	if (r < 0)
		return r;
	if (tlen[3] != 2 || !all_xdigits(tok[3], 2))
		return -EPROTO;
	r = token_u64(tok[3], 2, 16, &state);
	if (r < 0)
		return r;
	r = token_u64(tok[9], tlen[9], 10, &inode);
	if (r < 0)
		return r;
	*ret_local_port = (uint16_t)port;
	*ret_state = (unsigned int)state;
	*ret_inode = inode;
	if (ret_addr)
		tcp_addr_bytes(tok[1], alen, ret_addr);
	return 1;
}

int procfs_addr_from_host(const char *host, struct procfs_addr *ret)
{
	char buf[64];
	size_t n;

	if (!host || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, host, n);
	buf[n] = 0;
	if (inet_pton(AF_INET, buf, ret->bytes) == 1)
		ret->len = 4;
	else if (inet_pton(AF_INET6, buf, ret->bytes) == 1)
		ret->len = 16;
	else
		return -EINVAL; /* a name: no address to prefer */
	return 0;
}

static bool is_listener(int r, uint16_t lport, unsigned state, uint64_t inode, uint16_t port)
{
	/* A listener always has an inode; 0 means a socket without a file (TIME_WAIT, orphaned). */
	return r == 1 && state == PROCFS_TCP_LISTEN && lport == port && inode != 0;
}

int procfs_parse_tcp_listeners(const char *text, uint16_t port, uint64_t *inodes, size_t max)
{
	const char *pos = text, *line;
	size_t len, n = 0;

	if (!text || (!inodes && max))
		return -EINVAL;
	max = MIN(max, (size_t)INT_MAX);
	while (procfs_next_line(&pos, &line, &len)) {
		uint16_t lport;
		unsigned state;
		uint64_t inode;
		int r = procfs_parse_tcp_line(line, &lport, &state, &inode);

		if (r < 0)
			return r;
		if (is_listener(r, lport, state, inode, port) && n < max)
			inodes[n++] = inode;
	}
	return (int)n;
}
