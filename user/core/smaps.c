// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smaps.h"

static const char *line_end(const char *s)
{
	const char *e = strchr(s, '\n');

	return e ? e : s + strlen(s);
}

/* "Key:   123 kB" -> 123 into *v when the line's key is key */
static bool kv_kib(const char *line, const char *key, uint64_t *v)
{
	size_t n = strlen(key);
	char *end;

	if (strncmp(line, key, n) || line[n] != ':')
		return false;
	*v = strtoull(line + n + 1, &end, 10);
	return end != line + n + 1;
}

/* a header starts with hex digits and a dash; a "Key: value" line never does */
static bool is_header(const char *line)
{
	const char *p = line;

	while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
		p++;
	return p > line && *p == '-';
}

static int parse_header(const char *line, const char *end, struct smaps_mapping *m)
{
	char buf[SMAPS_PATH_MAX + 128];
	size_t len = (size_t)(end - line);
	int path_at = -1;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, line, len);
	buf[len] = 0;
	memset(m, 0, sizeof(*m));
	if (sscanf(buf, "%" SCNx64 "-%" SCNx64 " %4s %*x %*s %*u %n", &m->start, &m->end, m->perms, &path_at) < 3 ||
	    m->end < m->start || strlen(m->perms) != 4)
		return -EINVAL;
	if (path_at > 0 && (size_t)path_at <= len) {
		const char *path = buf + path_at;

		while (*path == ' ')
			path++;
		snprintf(m->path, sizeof(m->path), "%s", path);
	}
	m->file = m->path[0] == '/';
	return 0;
}

int smaps_next(const char *text, size_t *pos, struct smaps_mapping *m)
{
	const char *line = text + *pos, *end;
	int r;

	if (!*line)
		return 0;
	end = line_end(line);
	r = is_header(line) ? parse_header(line, end, m) : -EINVAL;
	*pos = (size_t)(end - text) + (*end ? 1 : 0);
	if (r < 0)
		return r;
	for (line = text + *pos; *line && !is_header(line); line = text + *pos) {
		end = line_end(line);
		if (!kv_kib(line, "Rss", &m->rss_kib) && !kv_kib(line, "Anonymous", &m->anonymous_kib))
			kv_kib(line, "Locked", &m->locked_kib);
		*pos = (size_t)(end - text) + (*end ? 1 : 0);
	}
	return 1;
}

bool smaps_droppable(const struct smaps_mapping *m, const char *self_path)
{
	if (!m->file || m->perms[1] == 'w' || !m->rss_kib || m->anonymous_kib)
		return false;
	/* only private mappings: libraries and the daemon's own binary are mapped that way, nothing else is touched */
	if (m->perms[3] != 'p')
		return false;
	return !(self_path && self_path[0] && !strcmp(m->path, self_path));
}
