// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include "common.h"
#include "log.h"
#include "unitjob.h"

struct unitjob {
	struct unitjob *next;
	char *unit;
	char *path; /* the job's object path, once RestartUnit answered */
	sd_bus_slot *call;
	unitjob_done_fn done;
	void *ctx;
	bool ended;
	int r;
	char result[128];
};

static struct {
	sd_bus *bus;
	sd_bus_slot *match;
	int epfd;
	uint64_t tag;
	int fd;
	uint32_t events;
	struct unitjob *jobs;
} B = { .epfd = -1, .fd = -1 };

void unitjob_setup(int epfd, uint64_t tag)
{
	B.epfd = epfd;
	B.tag = tag;
}

static void job_end(struct unitjob *j, int r, const char *result)
{
	if (j->ended)
		return;
	j->ended = true;
	j->r = r;
	snprintf(j->result, sizeof(j->result), "%s", result && result[0] ? result : "unknown");
}

static void job_free(struct unitjob *j)
{
	sd_bus_slot_unref(j->call);
	free(j->unit);
	free(j->path);
	free(j);
}

/* The manager's JobRemoved(id, job, unit, result): systemd sends it to whoever queued the job. */
static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	const char *path, *unit, *result;
	uint32_t id;

	(void)userdata;
	(void)ret_error;
	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	for (struct unitjob *j = B.jobs; j; j = j->next)
		if (!j->ended && j->path && !strcmp(j->path, path))
			job_end(j, strcmp(result, "done") ? -EIO : 0, result);
	return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct unitjob *j = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	const char *path;

	(void)ret_error;
	/* sd-bus holds its own reference while this runs */
	j->call = sd_bus_slot_unref(j->call);
	if (e) {
		log_error("RestartUnit %s failed: %s", j->unit, e->message ? e->message : e->name);
		job_end(j, -(sd_bus_message_get_errno(m) ?: EIO), e->name);
		return 0;
	}
	if (sd_bus_message_read(m, "o", &path) < 0 || !(j->path = strdup(path))) {
		job_end(j, -EBADMSG, "unreadable reply");
		return 0;
	}
	log_info("RestartUnit %s: job %s queued", j->unit, j->path);
	return 0;
}

static void drop_bus(const char *why)
{
	for (struct unitjob *j = B.jobs; j; j = j->next)
		job_end(j, -ECONNRESET, why);
	if (B.fd >= 0 && B.epfd >= 0)
		epoll_ctl(B.epfd, EPOLL_CTL_DEL, B.fd, NULL);
	B.fd = -1;
	B.events = 0;
	B.match = sd_bus_slot_unref(B.match);
	/* no flush: that would wait for a peer that may be gone */
	B.bus = sd_bus_close_unref(B.bus);
}

/* What sd-bus wants to wait for changes with what it has queued (a call to write, a connection to finish). */
static void update_events(void)
{
	struct epoll_event ev = { .data.u64 = B.tag };
	int e;

	if (!B.bus || B.fd < 0)
		return;
	e = sd_bus_get_events(B.bus);
	if (e < 0)
		return;
	ev.events = (uint32_t)e; /* POLLIN/POLLOUT have the values of EPOLLIN/EPOLLOUT */
	if (ev.events == B.events)
		return;
	if (epoll_ctl(B.epfd, EPOLL_CTL_MOD, B.fd, &ev) == 0)
		B.events = ev.events;
}

static int bus_connect(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = B.tag };
	int r;

	if (B.bus)
		return 0;
	if (B.epfd < 0)
		return -EBADF;
	/* sd-bus connects, authenticates and says Hello asynchronously: nothing here waits for the bus */
	r = sd_bus_open_system(&B.bus);
	if (r < 0)
		return r;
	/* queued before any call on the same connection, so the bus applies it before systemd sees the call */
	r = sd_bus_match_signal_async(B.bus, &B.match, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
				      "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, NULL, NULL);
	if (r >= 0) {
		B.fd = sd_bus_get_fd(B.bus);
		r = B.fd < 0 ? B.fd : epoll_ctl(B.epfd, EPOLL_CTL_ADD, B.fd, &ev) < 0 ? -errno : 0;
	}
	if (r < 0) {
		B.fd = -1;
		drop_bus("setup failed");
		return r;
	}
	B.events = EPOLLIN;
	return 0;
}

int unitjob_restart(const char *unit, unitjob_done_fn done, void *ctx, struct unitjob **ret)
{
	struct unitjob *j;
	int r;

	r = bus_connect();
	if (r < 0)
		return log_error_errno(r, "cannot connect to the system bus to restart %s", unit);
	j = calloc(1, sizeof(*j));
	if (!j || !(j->unit = strdup(unit))) {
		free(j);
		return -ENOMEM;
	}
	j->done = done;
	j->ctx = ctx;
	r = sd_bus_call_method_async(B.bus, &j->call, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
				     "org.freedesktop.systemd1.Manager", "RestartUnit", on_reply, j, "ss", unit, "replace");
	if (r < 0) {
		job_free(j);
		return log_error_errno(r, "RestartUnit %s: the call cannot be sent", unit);
	}
	j->next = B.jobs;
	B.jobs = j;
	*ret = j;
	update_events();
	return 0;
}

void unitjob_cancel(struct unitjob *j)
{
	for (struct unitjob **p = &B.jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			job_free(j);
			return;
		}
}

void unitjob_dispatch(void)
{
	struct unitjob **p;
	int r;

	if (!B.bus)
		return;
	do
		r = sd_bus_process(B.bus, NULL);
	while (r > 0);
	if (r < 0 || sd_bus_is_open(B.bus) <= 0) {
		log_warn("the system bus connection ended (%s); a RestartUnit job under way is not followed to its end",
			 r < 0 ? strerror(-r) : "closed");
		drop_bus("bus connection lost");
	}
	update_events();
	/* the callbacks run last: one may start another job */
	for (p = &B.jobs; *p;) {
		struct unitjob *j = *p;

		if (!j->ended) {
			p = &j->next;
			continue;
		}
		*p = j->next;
		j->done(j->r, j->result, j->ctx);
		job_free(j);
		p = &B.jobs; /* the callback may have changed the list */
	}
}

int unitjob_timeout_ms(void)
{
	struct timespec ts;
	uint64_t usec, now;

	if (!B.bus || sd_bus_get_timeout(B.bus, &usec) < 0 || usec == UINT64_MAX)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
	return usec <= now ? 0 : (int)MIN((usec - now + 999) / 1000, 60000ULL);
}

unsigned unitjob_pending(void)
{
	unsigned n = 0;

	for (struct unitjob *j = B.jobs; j; j = j->next)
		n++;
	return n;
}

void unitjob_shutdown(void)
{
	while (B.jobs) {
		struct unitjob *j = B.jobs;
		B.jobs = j->next;
		job_free(j);
	}
	if (B.bus)
		drop_bus("shutdown");
}
