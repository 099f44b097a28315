// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "lineage.h"

#define MAGIC "oomsentry-lineage 1"

/* Bytes that could end or split a line, and '%' itself, become %XX. */
static void put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == '%' || c == 0x7f)
			fprintf(f, "%%%02X", c);
		else
			fputc(c, f);
	}
}

int lineage_format(const struct lineage *l, char **ret)
{
	const struct orphan_home *h;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!l || !ret || l->n > LINEAGE_MAX_ENTRIES)
		return -EINVAL;
	h = &l->home;
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fputs(MAGIC "\n", f);
	if (h->known) {
		fprintf(f, "server %" PRId32 " %" PRIu64 " %" PRIu32 " %u\n", h->pid, h->start_ns, h->uid, h->port);
		fputs("exe ", f);
		put_escaped(f, h->exe);
		fputs("\ncwd ", f);
		put_escaped(f, h->cwd);
		fputs("\ncgroup ", f);
		put_escaped(f, h->cgroup);
		fputs("\ncmdline ", f);
		put_escaped(f, h->cmdline);
		fputc('\n', f);
	}
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%" PRId32 " %" PRIu64 " %" PRId32 " %" PRIu64 "\n", l->entries[i].pid, l->entries[i].start_ns,
			l->entries[i].server_pid, l->entries[i].server_start_ns);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Unescapes line[0..len) into dst (cap bytes with the NUL); false on a bad escape, a NUL, or when it does not fit. */
static bool get_escaped(const char *s, size_t len, char *dst, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= len)
				return false;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return false;
		dst[o++] = (char)c;
	}
	dst[o] = 0;
	return true;
}

/* Parses exactly n unsigned/signed decimal fields from line; false when there are more, fewer or bad ones. */
static bool parse_numbers(const char *line, size_t len, uint64_t *v, size_t n, const bool *is_signed)
{
	size_t i = 0;

	for (size_t k = 0; k < n; k++) {
		bool neg = false, any = false;
		uint64_t x = 0;

		if (k) {
			if (i >= len || line[i] != ' ')
				return false;
			i++;
		}
		if (i < len && line[i] == '-' && is_signed[k]) {
			neg = true;
			i++;
		}
		for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
			if (x > (UINT64_MAX - 9) / 10)
				return false;
			x = x * 10 + (uint64_t)(line[i] - '0');
			any = true;
		}
		if (!any)
			return false;
		if (is_signed[k]) {
			if (x > INT32_MAX)
				return false;
			v[k] = neg ? (uint64_t)-(int64_t)x : x;
		} else {
			v[k] = x;
		}
	}
	return i == len;
}

static bool starts(const char *line, size_t len, const char *word, size_t *ret_off)
{
	size_t n = strlen(word);

	if (len < n || memcmp(line, word, n) != 0)
		return false;
	*ret_off = n;
	return true;
}

int lineage_parse(const char *text, size_t len, struct lineage *ret)
{
	static const bool server_signed[] = { true, false, false, false };
	static const bool entry_signed[] = { true, false, true, false };
	struct lineage *l;
	size_t pos = 0, off;
	bool first = true, have_server = false;
	unsigned have_strings = 0;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!text || len > LINEAGE_TEXT_MAX)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;
		uint64_t v[4];

		pos += ll + (nl ? 1 : 0);
		if (first) {
			if (ll != strlen(MAGIC) || memcmp(line, MAGIC, ll) != 0)
				goto bad;
			first = false;
			continue;
		}
		if (!ll)
			continue;
		if (starts(line, ll, "server ", &off)) {
			if (have_server || !parse_numbers(line + off, ll - off, v, 4, server_signed) || (int32_t)v[0] <= 0 ||
			    v[2] > UINT32_MAX || v[3] > UINT16_MAX)
				goto bad;
			l->home.pid = (int32_t)v[0];
			l->home.start_ns = v[1];
			l->home.uid = (uint32_t)v[2];
			l->home.port = (uint16_t)v[3];
			have_server = true;
		} else if (starts(line, ll, "exe ", &off)) {
			if (!get_escaped(line + off, ll - off, l->home.exe, sizeof(l->home.exe)))
				goto bad;
			have_strings |= 1;
		} else if (starts(line, ll, "cwd ", &off)) {
			if (!get_escaped(line + off, ll - off, l->home.cwd, sizeof(l->home.cwd)))
				goto bad;
			have_strings |= 2;
		} else if (starts(line, ll, "cgroup ", &off)) {
			if (!get_escaped(line + off, ll - off, l->home.cgroup, sizeof(l->home.cgroup)))
				goto bad;
			have_strings |= 4;
		} else if (starts(line, ll, "cmdline ", &off)) {
			if (!get_escaped(line + off, ll - off, l->home.cmdline, sizeof(l->home.cmdline)))
				goto bad;
			have_strings |= 8;
		} else if ((line[0] >= '0' && line[0] <= '9') || line[0] == '-') {
			if (!parse_numbers(line, ll, v, 4, entry_signed) || (int32_t)v[0] <= 0 || (int32_t)v[2] <= 0 ||
			    !v[1] || !v[3])
				goto bad;
			if (l->n < LINEAGE_MAX_ENTRIES)
				l->entries[l->n++] = (struct lineage_entry){ (int32_t)v[0], v[1], (int32_t)v[2], v[3] };
		}
		/* any other line: written by a newer oomsentry, not needed here */
	}
	if (first || (have_server && have_strings != 15) || (!have_server && have_strings))
		goto bad;
	l->home.known = have_server && l->home.start_ns;
	l->home.alive = false; /* only the live process table can say that */
	*ret = *l;
	free(l);
	return 0;
bad:
	free(l);
	return -EBADMSG;
}

const struct lineage_entry *lineage_find(const struct lineage *l, int32_t pid, uint64_t start_ns)
{
	if (!l || pid <= 0 || !start_ns)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->entries[i].pid == pid && l->entries[i].start_ns == start_ns)
			return &l->entries[i];
	return NULL;
}
