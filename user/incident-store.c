// SPDX-License-Identifier: GPL-2.0
/* Incident reports on disk: written atomically as a directory of incident.json, timeline.txt and memory.svg, and
 * read back for `oomsentry report`. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "incident.h"
#include "incident-render.h"
#include "incident-store.h"
#include "log.h"

#define INCIDENT_FILE_MAX (64u << 20)

/* ---- files ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_file_at(int dfd, const char *name, const char *text)
{
	int fd, r;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	/* Explicit mode: the report may name prompts and processes, and umask must not widen or narrow it. */
	if (fchmod(fd, 0640) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = write_all(fd, text, strlen(text));
	/* the report explains a crash: it must survive the next one */
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t i, len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return len ? -ENAMETOOLONG : -EINVAL;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		if (i < len)
			buf[i] = '/';
	}
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* The instance name becomes part of a path: keep it short, visible and free of separators. */
static void path_component(char *buf, size_t size, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size && i < 64; i++) {
		char c = s[i];

		buf[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || (c == '.' && i > 0)) ? c : '_';
	}
	buf[i] = '\0';
}

static void remove_tmp(const char *tmp, int dfd)
{
	static const char *const names[] = { INCIDENT_JSON, INCIDENT_TIMELINE, INCIDENT_SVG };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		(void)unlinkat(dfd, names[i], 0);
	(void)rmdir(tmp);
}

int incident_write(const struct incident *inc, const char *dir, char *ret_path, size_t ret_path_size)
{
	_cleanup_free_ char *json = NULL, *timeline = NULL, *svg = NULL;
	char tmp[PATH_MAX], final[PATH_MAX], base[160], when[32], inst[80];
	_cleanup_close_ int dfd = -1;
	int r, n;

	if (!incident_valid(inc) || !dir || !*dir || (ret_path && ret_path_size == 0))
		return -EINVAL;
	if (ret_path)
		ret_path[0] = '\0';
	/* Render everything first: a failure here leaves nothing on disk. */
	r = incident_to_json(inc, &json);
	if (r >= 0)
		r = incident_render_timeline(inc, &timeline);
	if (r >= 0)
		r = incident_render_svg(inc, &svg);
	if (r < 0)
		return r;

	r = mkdir_p(dir, 0750);
	if (r < 0)
		return r;
	incident_format_utc(when, sizeof(when), inc->ts_ns, "%Y%m%dT%H%M%SZ");
	path_component(inst, sizeof(inst), inc->instance);
	snprintf(base, sizeof(base), "%s-%s-%s", when, inst, incident_trigger_to_string(inc->trigger));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.incident-XXXXXX", dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (!mkdtemp(tmp))
		return -errno;
	dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		(void)rmdir(tmp);
		return r;
	}
	if (fchmod(dfd, 0750) < 0)
		r = -errno;
	if (r >= 0)
		r = write_file_at(dfd, INCIDENT_JSON, json);
	if (r >= 0)
		r = write_file_at(dfd, INCIDENT_TIMELINE, timeline);
	if (r >= 0)
		r = write_file_at(dfd, INCIDENT_SVG, svg);
	if (r < 0) {
		remove_tmp(tmp, dfd);
		return r;
	}

	/* Two incidents of one instance within a second get -2, -3, ...; never overwrite a report. */
	for (n = 1; n < 100; n++) {
		size_t len = n == 1 ? (size_t)snprintf(final, sizeof(final), "%s/%s", dir, base)
				    : (size_t)snprintf(final, sizeof(final), "%s/%s-%d", dir, base, n);

		if (len >= sizeof(final) || (ret_path && len >= ret_path_size)) {
			r = -ENAMETOOLONG;
			break;
		}
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0) {
			r = 0;
			break;
		}
		r = -errno;
		if (r == -EINVAL) {
			/* File systems without RENAME_NOREPLACE: check, then rename (a race only with ourselves). */
			if (access(final, F_OK) == 0) {
				r = -EEXIST;
				continue;
			}
			r = rename(tmp, final) < 0 ? -errno : 0;
			if (r == 0)
				break;
		}
		if (r != -EEXIST && r != -ENOTEMPTY)
			break;
	}
	if (r < 0) {
		remove_tmp(tmp, dfd);
		return r;
	}
	{
		int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd >= 0) {
			(void)fsync(dfd);
			(void)fsync(pfd);
			close(pfd);
		}
	}
	if (ret_path)
		snprintf(ret_path, ret_path_size, "%s", final);
	return 0;
}

static int read_text_file(const char *path, char **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	if (st.st_size > INCIDENT_FILE_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	/* Read to EOF rather than trusting st_size, within the same bound. */
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > (size_t)st.st_size)
			return -EFBIG;
	}
	buf[len] = '\0';
	if (strlen(buf) != len)
		return -EBADMSG;
	*ret = TAKE_PTR(buf);
	return 0;
}

int incident_load_and_print(const char *path_or_dir, FILE *out)
{
	_cleanup_free_ char *text = NULL, *timeline = NULL, *dir = NULL, *abs_dir = NULL;
	_cleanup_incident_ struct incident *inc = NULL;
	char json_path[PATH_MAX], svg_path[PATH_MAX];
	struct stat st;
	char *slash;
	int r;

	if (!path_or_dir || !*path_or_dir || !out)
		return -EINVAL;
	if (stat(path_or_dir, &st) < 0)
		return log_error_errno(-errno, "%s: cannot open incident", path_or_dir);
	if (S_ISDIR(st.st_mode)) {
		dir = strdup(path_or_dir);
		if ((size_t)snprintf(json_path, sizeof(json_path), "%s/%s", path_or_dir, INCIDENT_JSON) >=
		    sizeof(json_path))
			return log_error_errno(-ENAMETOOLONG, "%s: path too long", path_or_dir);
		if (access(json_path, F_OK) < 0)
			return log_errno(LOG_ERR, -ENOENT, "%s is not an incident directory (no %s in it)", path_or_dir,
					 INCIDENT_JSON);
	} else {
		if ((size_t)snprintf(json_path, sizeof(json_path), "%s", path_or_dir) >= sizeof(json_path))
			return log_error_errno(-ENAMETOOLONG, "%s: path too long", path_or_dir);
		dir = strdup(path_or_dir);
		if (dir) {
			slash = strrchr(dir, '/');
			if (!slash)
				snprintf(dir, strlen(dir) + 1, ".");
			else if (slash == dir)
				slash[1] = '\0';
			else
				*slash = '\0';
		}
	}
	if (!dir)
		return log_error_errno(-ENOMEM, "%s", path_or_dir);

	r = read_text_file(json_path, &text);
	if (r == -EBADMSG)
		return log_errno(LOG_ERR, r, "%s is not an oomsentry incident (not a text file)", json_path);
	if (r < 0)
		return log_error_errno(r, "%s: cannot read", json_path);
	r = incident_from_json(text, &inc);
	if (r == -EBADMSG)
		return log_errno(LOG_ERR, r, "%s is not an oomsentry incident report (format %s version %d)", json_path,
				 INCIDENT_FORMAT_NAME, INCIDENT_FORMAT_VERSION);
	if (r < 0)
		return log_error_errno(r, "%s: cannot load", json_path);
	r = incident_render_timeline(inc, &timeline);
	if (r < 0)
		return log_error_errno(r, "%s: cannot render the timeline", json_path);

	abs_dir = realpath(dir, NULL);
	if ((size_t)snprintf(svg_path, sizeof(svg_path), "%s/%s", abs_dir ? abs_dir : dir, INCIDENT_SVG) >=
	    sizeof(svg_path))
		return log_error_errno(-ENAMETOOLONG, "%s: path too long", dir);
	fputs(timeline, out);
	fprintf(out, "\nplot: %s%s\n", svg_path, access(svg_path, R_OK) == 0 ? "" : " (missing)");
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}
