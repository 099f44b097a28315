// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include "journal.h"
#include "journal-send.h"
#include "log.h"
#include "recout.h"
#include "utf8.h"

static const struct {
	const char *name;
	const char *id;
} kinds[REC_MAX] = {
	[REC_EXEC] = { "exec", "6d2c928d3b084382bb9abe6e9b830682" },
	[REC_FORK] = { "fork", "1d078b8a17bb4b8185f72b431fb2541f" },
	[REC_EXIT] = { "exit", "cb01c5e65cb04eeea42295f45439cdbc" },
	[REC_OOM_VICTIM] = { "oom_victim", "19d4f751df4c4f8183c45d00a41217e8" },
	[REC_RSS] = { "rss", "67f4b82c197c4f1f99829238143ae261" },
	[REC_MMAP] = { "mmap", "886d683d51944591afc03be603fea8f0" },
	[REC_MUNMAP] = { "munmap", "5e0350d76c794962a4aa1080979c6669" },
	[REC_RECLAIM] = { "reclaim", "fdc84bc088c84bdbaba19042acc65463" },
	[REC_MEMCG] = { "memcg_event", "1a341ee577d94d02846c95bed92c4f0a" },
	[REC_GENERATION] = { "generation", "29f3d2daeaa34bda98569afce0659263" },
	[REC_LEAK_SUSPECTED] = { "leak_suspected", "b4487d4b047c4ed7a9d354979c9ed8be" },
	[REC_FORECAST] = { "forecast", "0b9bfe96c395445b8b4ba06ccaa5f3f2" },
	[REC_ACTION] = { "action", "e3fb58bda0e54ef2af15d781bc175a57" },
	[REC_DECISION] = { "decision", "62f5c115adeb407a8a965f6a71626ecc" },
	[REC_ORPHAN] = { "orphan", "581793d08e4b4bda8fbd6484746ea515" },
	[REC_CRASH_LOOP] = { "crash_loop", "47540427958d4601a50b9bbcd342ade1" },
	[REC_DAEMON] = { "daemon", "9d4c5b0a36c64a5cb4a0f2e3c1d7e801" },
	[REC_COMFY] = { "comfy", "a3f1e2d4c5b64a7e8f9012b3c4d5e602" },
	[REC_PROCESS] = { "process", "4b7c2e1f0a9d48e6b5c3d2a1f0e9d803" },
	[REC_INCIDENT] = { "incident", "c8e7d6f5a4b34c2d9e1f0a2b3c4d5e04" },
};

/* A line is a few hundred bytes (a JSON line with every field at most ~13 KiB): 1 MiB holds thousands of records,
 * more than a burst brings in the seconds a reader may pause. Lines are allocated as they wait, so a stdout that
 * is read costs nothing, and a stuck one at most this (the daemon's RSS goal is 8 MiB). */
#define REC_OUT_QUEUE_BYTES (1 << 20)

static struct recout rec_out;
static bool rec_stdout;
static bool rec_json;
static bool rec_journal;

int journal_parse_stream(const char *text, uint64_t *ret_dev, uint64_t *ret_ino)
{
	unsigned long long dev, ino;
	int n = 0;

	if (!text || !ret_dev || !ret_ino || sscanf(text, "%llu:%llu%n", &dev, &ino, &n) != 2 || text[n] ||
	    !(text[0] >= '0' && text[0] <= '9'))
		return -EINVAL;
	*ret_dev = dev;
	*ret_ino = ino;
	return 0;
}

bool journal_is_stream(int fd)
{
	uint64_t dev, ino;
	struct stat st;

	/* systemd sets JOURNAL_STREAM to the device and inode of the stream it connected stdout/stderr to */
	if (journal_parse_stream(getenv("JOURNAL_STREAM"), &dev, &ino) < 0 || fstat(fd, &st) < 0)
		return false;
	return (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

static char *rec_line(const struct rec *r);

/* The line where records were dropped: a record itself, so that a reader of JSON lines parses it like any other. */
static size_t dropped_notice(uint64_t dropped, char *buf, size_t size, void *ctx)
{
	_cleanup_free_ char *line = NULL;
	struct rec r;
	int n;

	(void)ctx;
	rec_init(&r, REC_DAEMON, LOG_WARNING);
	rec_add(&r, "STATE", "stdout_dropped");
	rec_add_u64(&r, "DROPPED", dropped);
	rec_message(&r, "%llu records were not written to standard output: it was not read while they came%s",
		    (unsigned long long)dropped, rec_journal ? " (the journal has them)" : "");
	line = rec_line(&r);
	n = line ? snprintf(buf, size, "%s", line) : 0;
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

void journal_setup(FILE *out, bool json, bool to_journal)
{
	struct stat st;

	rec_stdout = out != NULL;
	rec_json = json;
	rec_journal = false;
	if (to_journal) {
		/* sd_journal_send() silently drops records without journald; say it once instead */
		if (stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode)) {
			rec_journal = true;
			/* under systemd stdout is the journal too: a second copy of every record would only be noise */
			if (out && journal_is_stream(fileno(out)))
				rec_stdout = false;
		} else
			log_warn("no journald socket at /run/systemd/journal/socket: records go to standard output only");
	}
	if (rec_stdout) {
		/* what stdio buffered before (nothing, in the daemon) goes first; from here on the FILE is not used */
		fflush(out);
		recout_start(&rec_out, fileno(out), REC_OUT_QUEUE_BYTES, dropped_notice, NULL);
	}
}

size_t journal_flush(uint64_t deadline_ns)
{
	return rec_stdout ? recout_flush(&rec_out, deadline_ns) : 0;
}

bool journal_connected(void)
{
	return rec_journal;
}

const char *rec_kind_name(enum rec_kind kind)
{
	return kind < REC_MAX && kinds[kind].name ? kinds[kind].name : "unknown";
}

const char *rec_kind_message_id(enum rec_kind kind)
{
	return kind < REC_MAX && kinds[kind].id ? kinds[kind].id : "";
}

void rec_init(struct rec *r, enum rec_kind kind, int priority)
{
	r->kind = kind;
	r->priority = priority;
	r->message[0] = 0;
	r->n_fields = 0;
}

void rec_add(struct rec *r, const char *key, const char *fmt, ...)
{
	struct rec_field *f;
	va_list ap;

	if (r->n_fields >= REC_MAX_FIELDS)
		return;
	f = &r->fields[r->n_fields++];
	snprintf(f->key, sizeof(f->key), "%s", key);
	va_start(ap, fmt);
	vsnprintf(f->value, sizeof(f->value), fmt, ap);
	va_end(ap);
}

void rec_add_bytes(struct rec *r, const char *key, uint64_t bytes)
{
	rec_add(r, key, "%" PRIu64, bytes);
}

void rec_add_ms(struct rec *r, const char *key, uint64_t duration_ns)
{
	rec_add(r, key, "%" PRIu64, (uint64_t)(duration_ns / NSEC_PER_MSEC));
}

void rec_add_pid(struct rec *r, const char *key, pid_t pid)
{
	rec_add(r, key, "%d", (int)pid);
}

void rec_add_id(struct rec *r, const char *key, const char *id)
{
	rec_add(r, key, "%s", id ? id : "");
}

void rec_add_u64(struct rec *r, const char *key, uint64_t v)
{
	rec_add(r, key, "%" PRIu64, v);
}

void rec_add_i64(struct rec *r, const char *key, int64_t v)
{
	rec_add(r, key, "%" PRId64, v);
}

void rec_message(struct rec *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
}

/* JSON text is UTF-8: bytes that do not form valid UTF-8 (a process may name itself anything) become U+FFFD. */
static struct json_object *json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char out[3 * 800 + 1];
	size_t o = 0;

	while (*p && o + 4 < sizeof(out)) {
		size_t n = utf8_seq_len(p);

		if (!n) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = 0;
	return json_object_new_string(out);
}

/* Integers go out as JSON numbers so that consumers need no conversion; everything else as strings. */
static struct json_object *json_value(const char *v)
{
	char *end;
	long long n;

	if (isdigit((unsigned char)*v)) {
		unsigned long long u;

		errno = 0;
		u = strtoull(v, &end, 10);
		if (!errno && !*end)
			return json_object_new_uint64(u);
	} else if (*v == '-' && isdigit((unsigned char)v[1])) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (!errno && !*end)
			return json_object_new_int64(n);
	}
	return json_string(v);
}

/* Fields whose values are names or ids: a prompt id or a process name made of digits is still a string. */
static bool field_is_text(const char *key)
{
	static const char *const text[] = { "COMM", "PROMPT_ID", "NEW_PROMPT_ID", "INSTANCE", "CMDLINE", "FILENAME",
					    "PATH", "CGROUP", "REASON", "URL", "ACTION", "RESULT", "CAUSES" };

	for (size_t i = 0; i < ARRAY_SIZE(text); i++)
		if (!strcmp(key, text[i]))
			return true;
	return false;
}

char *rec_to_json(const struct rec *r)
{
	struct json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, "event", json_object_new_string(rec_kind_name(r->kind)));
	json_object_object_add(o, "priority", json_object_new_int(r->priority));
	for (int i = 0; i < r->n_fields; i++) {
		char key[32];
		size_t j;

		for (j = 0; r->fields[i].key[j] && j < sizeof(key) - 1; j++)
			key[j] = (char)tolower((unsigned char)r->fields[i].key[j]);
		key[j] = 0;
		json_object_object_add(o, key, field_is_text(r->fields[i].key) ? json_string(r->fields[i].value) :
										     json_value(r->fields[i].value));
	}
	json_object_object_add(o, "message", json_string(r->message));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

int rec_emit(const struct rec *r)
{
	char buf[REC_MAX_FIELDS + 5][800];
	struct iovec iov[REC_MAX_FIELDS + 5];
	int n = 0, ret = 0;

	if (rec_journal) {
		snprintf(buf[n], sizeof(buf[n]), "MESSAGE=%s", r->message);
		n++;
		snprintf(buf[n], sizeof(buf[n]), "MESSAGE_ID=%s", rec_kind_message_id(r->kind));
		n++;
		snprintf(buf[n], sizeof(buf[n]), "PRIORITY=%d", r->priority);
		n++;
		snprintf(buf[n], sizeof(buf[n]), "SYSLOG_IDENTIFIER=oomsentry");
		n++;
		snprintf(buf[n], sizeof(buf[n]), "OOMSENTRY_EVENT=%s", rec_kind_name(r->kind));
		n++;
		for (int i = 0; i < r->n_fields; i++, n++)
			snprintf(buf[n], sizeof(buf[n]), "OOMSENTRY_%s=%s", r->fields[i].key, r->fields[i].value);
		for (int i = 0; i < n; i++)
			iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = strlen(buf[i]) };
		ret = journal_send(iov, n);
	}
	if (rec_stdout) {
		_cleanup_free_ char *line = rec_line(r);
		int err;

		if (line && recout_write(&rec_out, line, strlen(line)) == LINEQ_DROPPED_FIRST)
			log_warn("standard output is not read: records that find no room in its queue (%d KiB) are dropped "
				 "until it is%s", REC_OUT_QUEUE_BYTES >> 10,
				 rec_journal ? " (the journal still gets every one)" : "");
		err = recout_error(&rec_out);
		if (err < 0)
			log_warn_errno(err, "cannot write records to standard output; no more are written to it%s",
				       rec_journal ? " (the journal still gets them)" : "");
	}
	return ret;
}

/* The record's line on standard output, without its newline: JSON or text. NULL without memory. */
static char *rec_line(const struct rec *r)
{
	char *s;

	if (rec_json)
		return rec_to_json(r);
	return asprintf(&s, "%-14s %s", rec_kind_name(r->kind), r->message) < 0 ? NULL : s;
}
