/* SPDX-License-Identifier: GPL-2.0 */
/* ComfyUI's replies: the structs and their pure parsers (json-c), tested and fuzzed without a server. The HTTP
 * client that fetches them is comfy-client.h. */
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

/* A prompt id we can put in a URL path, a log line and a fixed buffer: 1..63 bytes, no control bytes. */
bool comfy_prompt_id_ok(const char *s, size_t len);

struct json_object;
/* Parses exactly one JSON object filling [json, json+len) (surrounding whitespace allowed), as the reply parsers
 * do: for caller-supplied prompt and extra_data text. 0 with *ret owned by the caller (json_object_put), -EPROTO
 * (ret_error says why), -EINVAL, -ENOMEM. */
int comfy_parse_object(const char *json, size_t len, struct json_object **ret, char *ret_error, size_t error_size);

#endif
