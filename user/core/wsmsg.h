/* SPDX-License-Identifier: GPL-2.0 */
/* What a ComfyUI websocket text message says (DESIGN.md §1a), and whether it should wake the daemon to read
 * /queue + /history. Pure: no I/O, no clock, no logging; tested by table and fuzzed.
 *
 * ComfyUI broadcasts `status` ({"status": {"exec_info": {"queue_remaining": N}}, "sid"?}) on every queue change,
 * that is when a prompt is queued, when the worker takes it (start) and when it is done (end). The execution
 * events go only to the client that submitted the prompt (progress and execution_interrupted are broadcast when the
 * prompt had no client_id; progress_state always is), so they name other clients' prompts only in those cases; a
 * watchdog uses them as wake-ups and as early boundaries, and reads the authoritative boundaries from /history. */
#ifndef OOMSENTRY_WSMSG_H
#define OOMSENTRY_WSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSMSG_ID_MAX 64       /* prompt ids (uuid4: 36), node ids, session ids; longer ones are refused */
#define WSMSG_TYPE_MAX 48     /* event names kept for messages; longer are truncated */
#define WSMSG_MAX_DEPTH 64    /* execution_error carries current_inputs; deeper nesting is not ComfyUI's */
#define WSMSG_ERROR_MAX 256

enum wsmsg_type {
	WSMSG_OTHER = 0,           /* any other event (custom nodes send their own); ignored */
	WSMSG_STATUS,              /* queue changed: queue_remaining */
	WSMSG_EXECUTION_START,     /* a prompt began (timestamp) */
	WSMSG_EXECUTION_CACHED,
	WSMSG_EXECUTING,           /* a node began; node_null: the prompt is done (sent after its end) */
	WSMSG_PROGRESS,            /* sampler step value/max */
	WSMSG_EXECUTED,            /* a node produced output */
	WSMSG_EXECUTION_SUCCESS,   /* a prompt ended well (timestamp) */
	WSMSG_EXECUTION_ERROR,     /* ... with an exception (timestamp, exception_type) */
	WSMSG_EXECUTION_INTERRUPTED, /* ... by /interrupt (timestamp) */
	WSMSG_PROGRESS_STATE,      /* a node of the prompt started, stepped or ended (ComfyUI 0.3.4x on): sent to every
				    * websocket whatever the prompt's client_id (comfy_execution/progress.py) */
	_WSMSG_TYPE_MAX,
};

struct wsmsg {
	enum wsmsg_type type;
	char type_name[WSMSG_TYPE_MAX];  /* the event name as sent (truncated), also for WSMSG_OTHER */
	bool has_queue_remaining;        /* status: exec_info.queue_remaining present */
	int64_t queue_remaining;         /* >= 0 */
	char sid[WSMSG_ID_MAX];          /* status: the session id ComfyUI gives the connection ("" when absent) */
	char prompt_id[WSMSG_ID_MAX];    /* execution events: "" when absent */
	char node[WSMSG_ID_MAX];         /* executing/progress/executed: "" when absent or null */
	bool node_null;                  /* executing with "node": null: the prompt is finished */
	int64_t timestamp_ms;            /* epoch ms of the server's clock; 0 when absent */
	int64_t progress_value, progress_max; /* progress; 0 when absent */
	char exception_type[64];         /* execution_error, truncated */
};

/* Parses one text message {"type": string, "data": object}. Returns 0; -EPROTO for anything else (not JSON, no
 * type, data not an object, a field of a known event with the wrong type or out of range, ids longer than
 * WSMSG_ID_MAX-1 or empty where given); -EINVAL for NULL ret; -ENOMEM. Unknown event types parse as WSMSG_OTHER
 * without looking at data. *ret is zeroed first; err (may be NULL) gets a one-line reason on failure. */
int wsmsg_parse(const char *text, size_t len, struct wsmsg *ret, char *err, size_t err_size);

/* The message says its prompt left the worker: execution_success, _error, _interrupted, executing with node null. */
bool wsmsg_ends_prompt(const struct wsmsg *m);

/* The message marks a queue change or a prompt boundary: read /queue and /history now. */
bool wsmsg_wakes(const struct wsmsg *m);

/* "status", "execution_start", ... ; "other" for WSMSG_OTHER, "invalid" out of range. Static strings. */
const char *wsmsg_type_name(enum wsmsg_type t);

#endif
