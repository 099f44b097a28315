/* SPDX-License-Identifier: GPL-2.0 */
/* libcurl's multi interface driven by the daemon's epoll loop: HTTP requests to ComfyUI run while the loop keeps
 * serving BPF events, signals and timers; nothing waits for a server that does not answer. libcurl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back without socket activity
 * (CURLMOPT_TIMERFUNCTION, on a timerfd); each finished transfer is handed to its done callback, from the loop. */
#ifndef OOMSENTRY_CURL_LOOP_H
#define OOMSENTRY_CURL_LOOP_H

#include <stdint.h>
#include <curl/curl.h>

struct curl_loop;

/* Called once per transfer, from curl_loop_dispatch(), after libcurl is done with it: res is the transfer's
 * result. The easy handle is removed from the multi handle before the call; the callback owns it then (free it
 * with curl_easy_cleanup or reuse it). */
typedef void (*curl_loop_done_fn)(CURL *easy, CURLcode res, void *ctx);

/* epfd: the loop's epoll; every fd this module adds carries tag (epoll_event.data.u64 = tag), so that the loop
 * hands the event to curl_loop_dispatch(). 0 or negative errno. */
int curl_loop_new(int epfd, uint64_t tag, struct curl_loop **ret);
/* Aborts transfers in flight (their done callbacks run with CURLE_ABORTED_BY_CALLBACK) and frees. NULL ok. */
void curl_loop_free(struct curl_loop *cl);
/* Starts a transfer; done runs later, never from inside this call. 0 or -ENOMEM/-EIO. */
int curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_fn done, void *ctx);
/* Removes a transfer that has not finished (its done callback does not run). The caller owns easy again. */
void curl_loop_cancel(struct curl_loop *cl, CURL *easy);
/* The loop saw activity on an fd tagged with this module's tag (ev: the epoll event); runs libcurl on it and the
 * done callbacks of finished transfers. */
void curl_loop_dispatch(struct curl_loop *cl, const void *epoll_event);
/* Transfers in flight. */
unsigned curl_loop_running(const struct curl_loop *cl);

#endif
