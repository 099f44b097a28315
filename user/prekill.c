// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "localconn.h"
#include "log.h"
#include "prekill.h"
#include "varlink.h"

/* oomd sends one call per connection; a client that pipelines gets this many answered before the hang-up */
#define PREKILL_MAX_CALLS 16
/* oomd calls as soon as it has connected and hangs up after the reply; a client silent this long is hung up on */
#define PREKILL_CLIENT_TIMEOUT_MS 5000

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

/* One connection's calls: oomd sends one per connection and waits for the reply. */
struct prekill_conn {
	const char *version;
	prekill_notify_fn notify;
	void *ctx;
	int calls;
};

static long prekill_input(struct localconn *c, char *buf, size_t used, void *ctx)
{
	struct prekill_conn *p = ctx;
	size_t off = 0;

	while (p->calls < PREKILL_MAX_CALLS) {
		long end = varlink_message_end(buf + off, used - off);
		char cgroup[VARLINK_CGROUP_MAX], *reply = NULL;
		int v;

		if (end < 0)
			return (long)off;
		p->calls++;
		v = varlink_handle(buf + off, (size_t)end, p->version, &reply, cgroup, sizeof(cgroup));
		if (v == VARLINK_NOTIFY && p->notify)
			p->notify(cgroup, p->ctx);
		if (v >= 0 && reply)
			localconn_send(c, reply, strlen(reply) + 1);
		free(reply);
		off += (size_t)end + 1;
		if (v < 0 || v == VARLINK_CLOSE)
			return -1;
	}
	return -1;
}

static const struct localconn_ops prekill_ops = { .input = prekill_input, .release = free };

void prekill_server_accept(int fd, const char *version, prekill_notify_fn notify, void *ctx)
{
	struct ucred cred;
	socklen_t clen;
	int cfd;

	/* every connection waiting, each served on the loop: a client that sends nothing holds a slot until its
	 * deadline, never the loop */
	for (int i = 0; i < LOCALCONN_MAX && (cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0; i++) {
		struct prekill_conn *p;

		clen = sizeof(cred);
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || !peer_allowed(cred.uid)) {
			log_warn("prekill_hook: connection from uid %d refused", clen == sizeof(cred) ? (int)cred.uid : -1);
			close(cfd);
			continue;
		}
		p = calloc(1, sizeof(*p));
		if (!p) {
			close(cfd);
			continue;
		}
		*p = (struct prekill_conn){ .version = version, .notify = notify, .ctx = ctx };
		localconn_add(cfd, PREKILL_CLIENT_TIMEOUT_MS, &prekill_ops, p, VARLINK_MESSAGE_MAX + 1);
	}
}
