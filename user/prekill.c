// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "prekill.h"
#include "varlink.h"

/* oomd sends one call per connection; a client that pipelines gets this many answered before the hang-up */
#define PREKILL_MAX_CALLS 16

int prekill_server_start(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_warn("prekill_hook %s: path too long for a unix socket", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		/* oomd looks only here; systemd does not create the directory */
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			log_warn_errno(-errno, "prekill_hook: cannot create %s", dir);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_warn_errno(-errno, "prekill_hook: socket");
		return -1;
	}
	(void)unlink(path);
	/* only root (and systemd-oomd, which can override file modes) may connect: a Notify restarts ComfyUI */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
		log_warn_errno(-errno, "prekill_hook %s unavailable; systemd-oomd will kill without asking", path);
		close(fd);
		return -1;
	}
	log_info("systemd-oomd pre-kill hook listening on %s", path);
	return fd;
}

void prekill_server_stop(int fd, const char *path)
{
	if (fd < 0)
		return;
	close(fd);
	(void)unlink(path);
}

/* root, or systemd-oomd itself: it runs as the user systemd-oom (with CAP_DAC_OVERRIDE to reach root's sockets) */
static bool peer_allowed(uid_t uid)
{
	struct passwd *pw;

	if (uid == 0)
		return true;
	pw = getpwnam("systemd-oom");
	return pw && pw->pw_uid == uid;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

void prekill_server_accept(int fd, const char *version, prekill_notify_fn notify, void *ctx)
{
	struct timeval tv = { .tv_sec = 1 };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	size_t used = 0, cap = VARLINK_MESSAGE_MAX + 1;
	char *buf;
	int cfd, calls = 0;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || !peer_allowed(cred.uid)) {
		log_warn("prekill_hook: connection from uid %d refused", clen == sizeof(cred) ? (int)cred.uid : -1);
		close(cfd);
		return;
	}
	(void)setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	buf = malloc(cap);
	if (!buf) {
		close(cfd);
		return;
	}
	while (calls < PREKILL_MAX_CALLS) {
		long end = varlink_message_end(buf, used);
		char cgroup[VARLINK_CGROUP_MAX], *reply = NULL;
		int v;

		if (end < 0) {
			ssize_t n;

			if (used == cap)
				break; /* no NUL within the largest message: not a Varlink client */
			n = recv(cfd, buf + used, cap - used, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			used += (size_t)n;
			continue;
		}
		calls++;
		v = varlink_handle(buf, (size_t)end, version, &reply, cgroup, sizeof(cgroup));
		if (v == VARLINK_NOTIFY && notify)
			notify(cgroup, ctx);
		if (v >= 0 && reply && send_all(cfd, reply, strlen(reply) + 1) < 0)
			v = VARLINK_CLOSE;
		free(reply);
		if (v < 0 || v == VARLINK_CLOSE)
			break;
		memmove(buf, buf + end + 1, used - (size_t)end - 1);
		used -= (size_t)end + 1;
	}
	free(buf);
	close(cfd);
}
