/* SPDX-License-Identifier: GPL-2.0 */
/* ComfyUI HTTP client (libcurl): generation boundaries, host facts and the /free, /interrupt, requeue actions.
 * The replies and their parsers are core/comfy.h. */
#ifndef OOMSENTRY_COMFY_CLIENT_H
#define OOMSENTRY_COMFY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "comfy.h"

/* ---------------------------------------------------------------------------------------------------------
 * Transport (libcurl). One client per ComfyUI instance; a client is not thread-safe (the daemon has one
 * thread). The comfy_get_* / comfy_free / ... calls block for at most connect + total timeout: only where no
 * loop runs (`oomsentry scan`, tests). The daemon attaches each client to its curl loop and uses comfy_start_*,
 * which never block (see the end of this file).
 * --------------------------------------------------------------------------------------------------------- */

struct comfy_config {
	const char *base_url;        /* NULL: COMFY_DEFAULT_URL. http or https, optional path prefix; copied */
	const char *auth_header;     /* NULL or one header line, "Authorization: Bearer x"; copied */
	int connect_timeout_ms;      /* <= 0: COMFY_DEFAULT_CONNECT_TIMEOUT_MS */
	int total_timeout_ms;        /* <= 0: COMFY_DEFAULT_TOTAL_TIMEOUT_MS (whole request, connect included) */
	size_t max_reply_bytes;      /* 0: COMFY_DEFAULT_MAX_REPLY_BYTES; bigger replies fail with -EMSGSIZE */
};

struct comfy_client;

/* curl_global_init(). main() calls it once before any other thread exists; comfy_client_new() also calls it
 * (idempotent) so tests need not. Returns 0 or -EIO. comfy_global_cleanup() at exit, after the last client. */
int comfy_global_init(void);
void comfy_global_cleanup(void);

/* cfg may be NULL (all defaults). -EINVAL for a URL that is not http(s)://host[:port][/prefix] or an auth
 * header that is not a single "Name: value" line; -ENOMEM. No request is made. */
int comfy_client_new(const struct comfy_config *cfg, struct comfy_client **ret);
/* Returns NULL so callers can write `c = comfy_client_free(c)`. Accepts NULL. */
struct comfy_client *comfy_client_free(struct comfy_client *c);

/* One line describing the last failure of any call on c ("connection refused to 127.0.0.1:8188",
 * "reply from /queue is not JSON: unexpected end of data at byte 37", "timeout after 3000 ms on /history/x");
 * "" when the last call succeeded. Owned by c, valid until the next call. */
const char *comfy_last_error(const struct comfy_client *c);
/* Reply body bytes buffered by the last call; never more than max_reply_bytes (a bigger reply is cut off
 * there and fails with -EMSGSIZE). */
size_t comfy_last_reply_bytes(const struct comfy_client *c);
/* "host:port" of the instance, for messages. */
const char *comfy_client_authority(const struct comfy_client *c);

/* Common return contract of the calls below: 0 on success, or
 *   -ECONNREFUSED / other connect errno (-EHOSTUNREACH, -ENETUNREACH ...), -ETIMEDOUT,
 *   -ECONNRESET (connection closed without a reply), -EMSGSIZE (reply over max_reply_bytes),
 *   -EBADMSG (HTTP status other than 200, 3xx included: redirects are never followed; or ComfyUI rejected a
 *   prompt), -EACCES (HTTP 401/403: check auth_header), -EPROTO (malformed/unexpected reply or a truncated
 *   body), -EINVAL (bad arguments), -ENOMEM, -EIO (other transport failures).
 * On failure comfy_last_error() says what happened and the ret struct is zeroed. */
int comfy_get_system_stats(struct comfy_client *c, struct comfy_system_stats *ret);
/* Release *ret with comfy_queue_free() (also after a failure: harmless). */
int comfy_get_queue(struct comfy_client *c, struct comfy_queue *ret);
/* prompt_id is URL-escaped into the path. */
int comfy_get_history_item(struct comfy_client *c, const char *prompt_id, struct comfy_history_item *ret);
/* POST /free {"unload_models": true[, "free_memory": true]}. ComfyUI only sets flags, consumed after the
 * running prompt: a 0 return means "accepted", not "freed". At least one flag must be true. */
int comfy_free(struct comfy_client *c, bool unload_models, bool free_memory);
/* POST /interrupt, with {"prompt_id": id} when prompt_id is not NULL (older builds interrupt whatever runs). */
int comfy_interrupt(struct comfy_client *c, const char *prompt_id);
/* POST /prompt {"prompt", "extra_data", "prompt_id", "front", "number"} to requeue a saved item under its
 * original id. prompt_json must be a JSON object; extra_data_json NULL or an object; prompt_id NULL lets
 * ComfyUI pick one; number COMFY_NUMBER_NONE lets ComfyUI assign one (a given number wins over front).
 * ret_prompt_id (may be NULL) receives the id ComfyUI used: builds that ignore "prompt_id" return a fresh one,
 * so compare it. A 400 reply returns -EBADMSG with ComfyUI's message in comfy_last_error(). */
int comfy_submit_prompt(struct comfy_client *c, const char *prompt_json, const char *extra_data_json,
			const char *prompt_id, bool front, int64_t number, char ret_prompt_id[COMFY_PROMPT_ID_MAX]);
/* POST /queue {"delete": [ids]}: removes pending items (not the running one). n == 0 is a no-op. */
int comfy_delete_from_queue(struct comfy_client *c, const char *const *prompt_ids, size_t n);

/* ---------------------------------------------------------------------------------------------------------
 * Requests run by the daemon's epoll loop (curl-loop.h). A client runs one at a time and queues the others in
 * order; each comfy_start_* returns at once (0, or the error of a request that cannot be made: bad arguments,
 * -ENOMEM; no request is queued then) and done(c, r, ctx) runs later from the loop, with r the transport's
 * result (the contract above). Inside done, comfy_take_* turn the reply into its struct (and its final r) and
 * comfy_last_error() describes a failure; the reply is gone after done returns.
 * --------------------------------------------------------------------------------------------------------- */
struct curl_loop;
typedef void (*comfy_done_fn)(struct comfy_client *c, int r, void *ctx);

void comfy_client_attach(struct comfy_client *c, struct curl_loop *loop);
/* On the loop, a host name is looked up off it (resolve.c): requests wait for its address, which this polls (call
 * it every sample); a failed lookup fails the requests waiting. */
void comfy_client_tick(struct comfy_client *c);
/* The server's numeric address as requests use it, NULL while a name has none yet. */
const char *comfy_client_address(const struct comfy_client *c);
/* A request is running or queued. */
bool comfy_busy(const struct comfy_client *c);
/* Drops every request, the running one too; their done callbacks do not run. */
void comfy_cancel_all(struct comfy_client *c);
int comfy_start_system_stats(struct comfy_client *c, comfy_done_fn done, void *ctx);
int comfy_start_queue(struct comfy_client *c, comfy_done_fn done, void *ctx);
int comfy_start_history_item(struct comfy_client *c, const char *prompt_id, comfy_done_fn done, void *ctx);
int comfy_start_free(struct comfy_client *c, bool unload_models, bool free_memory, comfy_done_fn done, void *ctx);
int comfy_start_interrupt(struct comfy_client *c, const char *prompt_id, comfy_done_fn done, void *ctx);
int comfy_start_submit(struct comfy_client *c, const char *prompt_json, const char *extra_data_json,
		       const char *prompt_id, bool front, int64_t number, comfy_done_fn done, void *ctx);
/* n > 0 ids */
int comfy_start_delete_from_queue(struct comfy_client *c, const char *const *prompt_ids, size_t n, comfy_done_fn done,
				  void *ctx);
/* The reply of a finished request as its struct; r is done's r. Return the final result (a reply that does not
 * parse is -EPROTO etc.). Also used by the blocking calls. */
int comfy_take_system_stats(struct comfy_client *c, int r, struct comfy_system_stats *ret);
int comfy_take_queue(struct comfy_client *c, int r, struct comfy_queue *ret);
int comfy_take_history_item(struct comfy_client *c, int r, const char *prompt_id, struct comfy_history_item *ret);
int comfy_take_submit(struct comfy_client *c, int r, char ret_prompt_id[COMFY_PROMPT_ID_MAX]);

#endif
