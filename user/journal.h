/* SPDX-License-Identifier: GPL-2.0 */
/* Structured records: one per thing that happened (exec, OOM victim, generation, action …). Each goes to the
 * journal with OOMSENTRY_* fields and a MESSAGE_ID per kind (explained by deploy/oomsentry.catalog), and to
 * stdout as a text line for a human or a JSON line for machines (--json). */
#ifndef OOMSENTRY_JOURNAL_H
#define OOMSENTRY_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "common.h"

#define REC_MAX_FIELDS 32

enum rec_kind {
	REC_EXEC, REC_FORK, REC_EXIT, REC_OOM_VICTIM, REC_RSS, REC_MMAP, REC_MUNMAP, REC_RECLAIM, REC_MEMCG,
	REC_GENERATION, REC_LEAK_SUSPECTED, REC_FORECAST, REC_ACTION, REC_DECISION, REC_ORPHAN, REC_CRASH_LOOP,
	REC_DAEMON, REC_COMFY, REC_PROCESS, REC_INCIDENT, REC_MAX,
};

struct rec_field {
	char key[32];   /* without the OOMSENTRY_ prefix, upper case: "PID", "RSS_BYTES" */
	char value[384];
};

struct rec {
	enum rec_kind kind;
	int priority;
	char message[768];
	struct rec_field fields[REC_MAX_FIELDS];
	int n_fields;
};

/* out: where text/JSON lines go (stdout; NULL: nowhere). to_journal: try the journal; when no journald socket
 * exists this says so once and carries on with stdout only. */
/* Records go to the journal (when to_journal and journald listens) and to out, unless out is the journal's own
 * stream (JOURNAL_STREAM names it): then only to the journal. Lines for out are written by a thread (recout.c);
 * the FILE itself is not written to again. */
void journal_setup(FILE *out, bool json, bool to_journal);
/* Before exit or re-exec: the queued lines written, waiting until deadline_ns at most (CLOCK_MONOTONIC). Returns
 * how many were left unwritten (a reader that does not read). */
size_t journal_flush(uint64_t deadline_ns);
/* JOURNAL_STREAM's "DEV:INO". 0 or -EINVAL. */
int journal_parse_stream(const char *text, uint64_t *ret_dev, uint64_t *ret_ino);
/* fd is the stream systemd connected to the journal. */
bool journal_is_stream(int fd);
bool journal_connected(void);
const char *rec_kind_name(enum rec_kind kind);
const char *rec_kind_message_id(enum rec_kind kind);

void rec_init(struct rec *r, enum rec_kind kind, int priority);
void rec_add(struct rec *r, const char *key, const char *fmt, ...) _printf_(3, 4);
/* Typed fields: one spelling per unit in every record. Keys say the unit: *_BYTES (decimal bytes), *_MS (a
 * duration, given in ns and written in whole ms), *PID (a pid of the daemon's namespace), *_ID (an identifier
 * written as it is, e.g. a prompt id). */
void rec_add_bytes(struct rec *r, const char *key, uint64_t bytes);
void rec_add_ms(struct rec *r, const char *key, uint64_t duration_ns);
void rec_add_pid(struct rec *r, const char *key, pid_t pid);
void rec_add_id(struct rec *r, const char *key, const char *id);
void rec_add_u64(struct rec *r, const char *key, uint64_t v);
void rec_add_i64(struct rec *r, const char *key, int64_t v);
void rec_message(struct rec *r, const char *fmt, ...) _printf_(2, 3);
/* Sends to the journal and queues the line for stdout (never waiting for either); returns 0 or the negative errno of
 * the journal send (the line still queued). */
int rec_emit(const struct rec *r);
/* The JSON line of a record (for tests and the status socket); caller frees. */
char *rec_to_json(const struct rec *r);

#endif
