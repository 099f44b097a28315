// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "curl-loop.h"
#include "log.h"

/* CURLOPT_PRIVATE of every easy handle we run points here: the easy handle's owner cannot use it. */
struct xfer {
	CURL *easy;
	curl_loop_done_fn done;
	void *ctx;
	struct xfer *next, **pprev; /* every transfer in flight, for curl_loop_free (libcurl 7.88 cannot list them) */
};

struct curl_loop {
	CURLM *multi;
	int epfd;
	int tfd;
	uint64_t tag;
	unsigned running;
	struct xfer *xfers;
};

static void xfer_unlink(struct xfer *x)
{
	*x->pprev = x->next;
	if (x->next)
		x->next->pprev = x->pprev;
}

/* The loop's epoll data: the module's tag in the low 32 bits, fd + 1 above (0 would mean "no fd"). */
static uint64_t ev_data(const struct curl_loop *cl, int fd)
{
	return cl->tag | ((uint64_t)(uint32_t)(fd + 1) << 32);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curl_loop *cl = userp;
	struct epoll_event ev = { .data.u64 = ev_data(cl, fd) };

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		/* libcurl may have closed it already: then the kernel dropped it from the epoll set itself */
		epoll_ctl(cl->epfd, EPOLL_CTL_DEL, fd, NULL);
		curl_multi_assign(cl->multi, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!socketp) {
		if (epoll_ctl(cl->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 &&
		    (errno != EEXIST || epoll_ctl(cl->epfd, EPOLL_CTL_MOD, fd, &ev) < 0))
			return log_debug_errno(-errno, "curl socket %d: epoll add", fd), -1;
		curl_multi_assign(cl->multi, fd, cl); /* any non-NULL marker: "registered" */
	} else if (epoll_ctl(cl->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
		return log_debug_errno(-errno, "curl socket %d: epoll mod", fd), -1;
	}
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_loop *cl = userp;
	struct itimerspec its = { 0 };

	(void)multi;
	if (timeout_ms >= 0) {
		/* 0 means "now": libcurl must not be re-entered from here, so the loop comes back at once instead */
		if (timeout_ms == 0)
			its.it_value.tv_nsec = 1;
		else {
			its.it_value.tv_sec = timeout_ms / 1000;
			its.it_value.tv_nsec = (timeout_ms % 1000) * 1000000L;
		}
	}
	return timerfd_settime(cl->tfd, 0, &its, NULL) < 0 ? -1 : 0;
}

int curl_loop_new(int epfd, uint64_t tag, struct curl_loop **ret)
{
	struct curl_loop *cl = calloc(1, sizeof(*cl));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!cl)
		return -ENOMEM;
	cl->epfd = epfd;
	cl->tag = tag & 0xffffffffu;
	cl->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	cl->multi = curl_multi_init();
	if (cl->tfd < 0 || !cl->multi) {
		curl_loop_free(cl);
		return -ENOMEM;
	}
	ev.data.u64 = ev_data(cl, cl->tfd);
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, cl->tfd, &ev) < 0) {
		int r = -errno;
		curl_loop_free(cl);
		return r;
	}
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
	/* one idle connection per ComfyUI server is enough, and replies stay ordered per request anyway */
	curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, 16L);
	*ret = cl;
	return 0;
}

static void finish(struct curl_loop *cl, CURL *easy, CURLcode res)
{
	struct xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	curl_multi_remove_handle(cl->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	cl->running--;
	if (x) {
		curl_loop_done_fn done = x->done;
		xfer_unlink(x);
		void *ctx = x->ctx;
		free(x);
		done(easy, res, ctx);
	}
}

void curl_loop_free(struct curl_loop *cl)
{
	if (!cl)
		return;
	if (cl->multi) {
		while (cl->xfers)
			finish(cl, cl->xfers->easy, CURLE_ABORTED_BY_CALLBACK);
		curl_multi_cleanup(cl->multi);
	}
	if (cl->tfd >= 0) {
		epoll_ctl(cl->epfd, EPOLL_CTL_DEL, cl->tfd, NULL);
		close(cl->tfd);
	}
	free(cl);
}

int curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_fn done, void *ctx)
{
	struct xfer *x = malloc(sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->easy = easy;
	x->done = done;
	x->ctx = ctx;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(cl->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -EIO;
	}
	cl->running++;
	x->next = cl->xfers;
	x->pprev = &cl->xfers;
	if (cl->xfers)
		cl->xfers->pprev = &x->next;
	cl->xfers = x;
	return 0;
}

void curl_loop_cancel(struct curl_loop *cl, CURL *easy)
{
	struct xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	if (!x)
		return;
	curl_multi_remove_handle(cl->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	xfer_unlink(x);
	free(x);
	cl->running--;
}

void curl_loop_dispatch(struct curl_loop *cl, const void *epoll_event)
{
	const struct epoll_event *ev = epoll_event;
	int fd = (int)(uint32_t)(ev->data.u64 >> 32) - 1, still = 0;
	CURLMsg *msg;

	if (fd == cl->tfd) {
		uint64_t n;
		if (read(cl->tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
			log_debug_errno(-errno, "curl timerfd read");
		curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &still);
	} else if (fd >= 0) {
		int mask = (ev->events & EPOLLIN ? CURL_CSELECT_IN : 0) | (ev->events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			   (ev->events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(cl->multi, fd, mask, &still);
	}
	/* a done callback may start the next request, which is fine: it is only added here, run later */
	while ((msg = curl_multi_info_read(cl->multi, &still)))
		if (msg->msg == CURLMSG_DONE)
			finish(cl, msg->easy_handle, msg->data.result);
}

unsigned curl_loop_running(const struct curl_loop *cl)
{
	return cl ? cl->running : 0;
}
