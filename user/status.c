// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "common.h"
#include "localconn.h"
#include "status.h"
#include "utf8.h"

static int sockaddr_for(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

#define STATUS_CLIENT_TIMEOUT_S 5
/* a local client reads the table at once; one that has not taken it by then is hung up on */
#define STATUS_SERVE_TIMEOUT_MS 2000

static ino_t bound_ino;

int status_server_start(const char *path)
{
	struct stat st;
	struct sockaddr_un sa;
	char dir[sizeof(sa.sun_path)];
	char *slash;
	int fd, r;

	r = sockaddr_for(path, &sa);
	if (r < 0)
		return r;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0755);
	}
	/* a socket someone answers on belongs to a running daemon (of another instance): never take it away */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	if (fd >= 0)
		close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	chmod(path, 0660);
	if (stat(path, &st) == 0)
		bound_ino = st.st_ino;
	return fd;
}

void status_server_stop(int fd, const char *path)
{
	struct stat st;

	if (fd < 0)
		return;
	close(fd);
	/* only the socket we bound: another daemon may have replaced the file since */
	if (stat(path, &st) == 0 && st.st_ino == bound_ino)
		unlink(path);
}

void status_server_accept(int fd, status_render_fn render, void *ctx)
{
	int cfd;

	/* each client gets the table queued on the loop: one that does not read is hung up on at its deadline, and
	 * holds nothing up meanwhile */
	for (int i = 0; i < LOCALCONN_MAX && (cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0; i++) {
		struct localconn *c;
		FILE *out;
		char *buf = NULL;
		size_t len = 0;

		out = open_memstream(&buf, &len);
		if (!out) {
			close(cfd);
			continue;
		}
		render(out, ctx);
		fclose(out);
		c = localconn_add(cfd, STATUS_SERVE_TIMEOUT_MS, NULL, NULL, 0);
		if (c) {
			localconn_send(c, buf, len);
			localconn_finish(c);
		}
		free(buf);
	}
}

int status_client(const char *path, FILE *out)
{
	static char line[8192], esc[4 * 8192];
	size_t llen = 0;
	struct sockaddr_un sa;
	char buf[4096];
	ssize_t n;
	int fd;

	if (sockaddr_for(path, &sa) < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		fprintf(stderr, "oomsentry: no daemon answers on %s (%s); is 'oomsentry run' or 'observe' running?\n", path,
			strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	/* a daemon whose loop is stuck accepts (the kernel does) but never answers: say so, as a liveness probe needs */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = STATUS_CLIENT_TIMEOUT_S }, sizeof(struct timeval));
	/* line by line through the terminal escape: whatever the daemon (or what squats on its socket) sends */
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		size_t len = (size_t)n;
		char *nl;

		if (llen + len > sizeof(line) - 1)
			len = sizeof(line) - 1 - llen;
		memcpy(line + llen, buf, len);
		llen += len;
		line[llen] = 0;
		while ((nl = memchr(line, '\n', llen))) {
			*nl = 0;
			fprintf(out, "%s\n", utf8_escape_terminal(line, esc, sizeof(esc)));
			llen -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, llen + 1);
		}
		if (llen == sizeof(line) - 1) { /* an endless line: cut it */
			fprintf(out, "%s\n", utf8_escape_terminal(line, esc, sizeof(esc)));
			llen = 0;
		}
	}
	if (n < 0) {
		int r = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		fprintf(stderr, "oomsentry: the daemon on %s did not answer within %d s (%s)\n", path,
			STATUS_CLIENT_TIMEOUT_S, strerror(-r));
		close(fd);
		return r;
	}
	if (llen) {
		line[llen] = 0;
		fprintf(out, "%s\n", utf8_escape_terminal(line, esc, sizeof(esc)));
	}
	close(fd);
	return 0;
}
