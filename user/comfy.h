/* SPDX-License-Identifier: GPL-2.0 */
/* ComfyUI HTTP client: generation boundaries, host facts and the /free, /interrupt, requeue actions; pure
 * reply parsers (tested and fuzzed without a server) plus a thin libcurl transport. */
#ifndef OOMSENTRY_COMFY_H
#define OOMSENTRY_COMFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ComfyUI prompt ids are uuid4 strings (36 chars); clients may pick their own, we keep up to 63 bytes. */
#define COMFY_PROMPT_ID_MAX 64
/* Enough for any message comfy_last_error() or a parser produces; longer text is truncated. */
#define COMFY_ERROR_MAX 512
/* JSON nesting accepted from the server; workflows in extra_data.extra_pnginfo nest ~10 deep. */
#define COMFY_JSON_MAX_DEPTH 128
/* "No number": ComfyUI assigns the next one. Other negative numbers are real (ComfyUI gives items queued with
 * front=true the number -counter), so they are sent; only -1 itself cannot be requested. */
#define COMFY_NUMBER_NONE INT64_C(-1)
/* Queue numbers and timestamps beyond 2^53 cannot come from ComfyUI (Python floats/ints via JSON). */
#define COMFY_NUMBER_LIMIT (INT64_C(1) << 53)

#define COMFY_DEFAULT_URL "http://127.0.0.1:8188"
#define COMFY_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define COMFY_DEFAULT_TOTAL_TIMEOUT_MS 3000
#define COMFY_DEFAULT_MAX_REPLY_BYTES (8u << 20)

/* ---------------------------------------------------------------------------------------------------------
 * Reply structs (filled by the parsers and by the transport calls)
 * --------------------------------------------------------------------------------------------------------- */

/* GET /system_stats. Strings are truncated to fit; a missing optional field leaves "" / 0. */
struct comfy_system_stats {
	uint64_t ram_total_bytes;
	uint64_t ram_free_bytes;
	char os[16];                 /* Python os.name: "posix", "nt" */
	char comfyui_version[64];    /* "" on builds that predate the field */
	char python_version[128];
	char pytorch_version[64];
	size_t n_devices;
	/* First device only (ComfyUI reports one: the torch device it runs on). Zero when n_devices == 0. */
	char device_name[128];
	char device_type[16];        /* "cuda", "cpu", "mps", ... */
	uint64_t vram_total_bytes;
	uint64_t vram_free_bytes;
	uint64_t torch_vram_total_bytes;
	uint64_t torch_vram_free_bytes;
};

/* One /queue entry [number, prompt_id, prompt, extra_data, outputs_to_execute]. The three JSON texts are
 * malloc'd, owned by the enclosing struct comfy_queue, compact JSON as json-c re-serialises it (suitable for
 * comfy_submit_prompt()). */
struct comfy_queue_item {
	int64_t number;              /* non-integral numbers (client-chosen floats) are rounded down */
	char prompt_id[COMFY_PROMPT_ID_MAX];
	char *prompt_json;           /* JSON object */
	char *extra_data_json;       /* JSON object; carries client_id, which ComfyUI needs to route ws events */
	char *outputs_json;          /* JSON array of output node ids */
};

struct comfy_queue {
	struct comfy_queue_item *running;
	size_t n_running;
	struct comfy_queue_item *pending;
	size_t n_pending;
};

enum comfy_status {
	COMFY_STATUS_NONE = 0,       /* history entry without a status object (or not found) */
	COMFY_STATUS_SUCCESS,
	COMFY_STATUS_ERROR,
	COMFY_STATUS_OTHER,          /* any other status_str; kept in status_str */
};

/* GET /history/{prompt_id}: one entry. Timestamps are epoch milliseconds from the messages, 0 when absent. */
struct comfy_history_item {
	bool found;                  /* false: ComfyUI has no history for this id (still queued, running or unknown) */
	enum comfy_status status;
	char status_str[32];
	bool completed;
	bool msg_success;            /* messages include execution_success */
	bool msg_error;              /* ... execution_error */
	bool msg_interrupted;        /* ... execution_interrupted */
	int64_t start_ms;            /* execution_start */
	int64_t end_ms;              /* the last execution_success/_error/_interrupted */
	/* From execution_error, truncated: e.g. "torch.OutOfMemoryError" / "Allocation on device". */
	char exception_type[128];
	char exception_message[256];
};

/* POST /prompt reply: {"prompt_id", "number", "node_errors"} or {"error": {...}|"...", "node_errors"}. */
struct comfy_prompt_reply {
	char prompt_id[COMFY_PROMPT_ID_MAX];  /* "" in an error reply */
	int64_t number;                       /* COMFY_NUMBER_NONE (-1) in an error reply */
	size_t n_node_errors;                 /* nodes with validation errors (non-zero also on partial success) */
	char error_type[64];                  /* error reply: error.type, e.g. "prompt_outputs_failed_validation" */
	char error_message[256];              /* error reply: "message: details", or the plain error string */
};

/* ---------------------------------------------------------------------------------------------------------
 * Pure parsers: no I/O, no logging. `json`/`len` need not be NUL-terminated. On failure they return
 * -EPROTO (malformed or unexpected JSON: not JSON, NUL bytes, trailing garbage, nesting deeper than
 * COMFY_JSON_MAX_DEPTH, wrong types, numbers out of range, over-long prompt ids), -EINVAL (bad arguments),
 * -ENOMEM, and write a one-line reason to ret_error (may be NULL; error_size bytes, NUL-terminated).
 * The reason starts with what was wrong, e.g. "not JSON: unexpected end of data at byte 37" or
 * "queue_running[0]: expected at least 5 elements, got 2". *ret is fully set on success and zeroed on error.
 * --------------------------------------------------------------------------------------------------------- */
int comfy_parse_system_stats(const char *json, size_t len, struct comfy_system_stats *ret,
			     char *ret_error, size_t error_size);
/* On success the caller owns the item strings: release with comfy_queue_free(). */
int comfy_parse_queue(const char *json, size_t len, struct comfy_queue *ret, char *ret_error, size_t error_size);
/* Reply of /history/{prompt_id}: `{}` (found = false) or `{prompt_id: {...}}`. */
int comfy_parse_history_item(const char *json, size_t len, const char *prompt_id, struct comfy_history_item *ret,
			     char *ret_error, size_t error_size);
/* Returns 0 for an accepted prompt, -EBADMSG for a ComfyUI error reply (error_type/error_message filled; *ret
 * is then valid too), -EPROTO etc. as above. */
int comfy_parse_prompt_reply(const char *json, size_t len, struct comfy_prompt_reply *ret,
			     char *ret_error, size_t error_size);

/* Frees the item strings and arrays and zeroes *q. Safe on a zeroed struct, NULL, and twice. */
void comfy_queue_free(struct comfy_queue *q);

/* ---------------------------------------------------------------------------------------------------------
 * Transport (libcurl). One client per ComfyUI instance; a client is not thread-safe (the daemon has one
 * thread). Every call blocks for at most connect + total timeout.
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

#endif
