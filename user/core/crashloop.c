// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "common.h"
#include "crashloop.h"

int crashloop_init(struct crashloop *cl, uint64_t window_ns, uint32_t threshold)
{
	if (!cl)
		return -EINVAL;
	if (!threshold)
		threshold = CRASHLOOP_DEFAULT_THRESHOLD;
	if (threshold < 2 || threshold > CRASHLOOP_MAX_DEATHS)
		return -EINVAL;
	*cl = (struct crashloop){
		.window_ns = window_ns ? window_ns : CRASHLOOP_DEFAULT_WINDOW_NS,
		.threshold = threshold,
	};
	return 0;
}

static bool crashloop_valid(const struct crashloop *cl)
{
	return cl->window_ns && cl->threshold >= 2 && cl->threshold <= CRASHLOOP_MAX_DEATHS &&
	       cl->n <= CRASHLOOP_MAX_DEATHS && cl->head < CRASHLOOP_MAX_DEATHS && cl->ngroups <= CRASHLOOP_MAX_GROUPS;
}

static const struct death *ring_at(const struct crashloop *cl, size_t i)
{
	return &cl->recent[(cl->head + i) % CRASHLOOP_MAX_DEATHS];
}

static void ring_push(struct crashloop *cl, const struct death *d)
{
	if (cl->n == CRASHLOOP_MAX_DEATHS) {
		cl->recent[cl->head] = *d;
		cl->head = (cl->head + 1) % CRASHLOOP_MAX_DEATHS;
	} else {
		cl->recent[(cl->head + cl->n) % CRASHLOOP_MAX_DEATHS] = *d;
		cl->n++;
	}
}

static void group_add(struct crashloop *cl, const struct death_cause *c)
{
	for (size_t i = 0; i < cl->ngroups; i++)
		if (cl->groups[i].cause.kind == c->kind && cl->groups[i].cause.code == c->code) {
			cl->groups[i].count++;
			return;
		}
	if (cl->ngroups == CRASHLOOP_MAX_GROUPS) {
		cl->other_count++;
		return;
	}
	cl->groups[cl->ngroups++] = (struct crashloop_group){ .cause = { .kind = c->kind, .code = c->code }, .count = 1 };
}

static void group_label(const struct death_cause *c, char *buf, size_t buflen)
{
	const char *name;

	switch (c->kind) {
	case DEATH_OOM_KILLED:
		snprintf(buf, buflen, "OOM killer");
		break;
	case DEATH_EXIT0_AFTER_CHILD_OOM:
		snprintf(buf, buflen, "exit code 0 after an OOM kill of a child");
		break;
	case DEATH_SIGNALED:
		name = death_signal_name(c->code);
		if (name)
			snprintf(buf, buflen, "signal %d (%s)", c->code, name);
		else
			snprintf(buf, buflen, "signal %d", c->code);
		break;
	case DEATH_EXITED:
		snprintf(buf, buflen, "exit code %d", c->code);
		break;
	default:
		snprintf(buf, buflen, "unknown cause");
		break;
	}
}

/* Appends to buf at *len without ever overrunning; output past the end is dropped. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...) _printf_(4, 5);
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len + 1 >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = MIN(*len + (size_t)n, cap - 1);
}

static void fill_record(const struct crashloop *cl, struct crashloop_record *rec)
{
	size_t order[CRASHLOOP_MAX_GROUPS], len = 0;
	uint64_t span = cl->last_death_ns - cl->loop_start_ns;
	char label[DEATH_CAUSE_STR_MAX];

	memset(rec, 0, sizeof(*rec));
	rec->deaths_total = cl->loop_deaths;
	rec->first_death_ns = cl->loop_start_ns;
	rec->last_death_ns = cl->last_death_ns;
	for (size_t i = 0; i < cl->n; i++)
		if (ring_at(cl, i)->at_ns >= cl->loop_start_ns)
			rec->deaths[rec->ndeaths++] = *ring_at(cl, i);

	/* Most frequent cause first; equal counts keep the order they first appeared in. */
	for (size_t i = 0; i < cl->ngroups; i++) {
		size_t j = i;
		for (; j > 0 && cl->groups[order[j - 1]].count < cl->groups[i].count; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}

	append(rec->summary, sizeof(rec->summary), &len, "restarted %u times in ", cl->loop_deaths);
	if (span < 10 * NSEC_PER_SEC)
		append(rec->summary, sizeof(rec->summary), &len, "%llu.%llu s", (unsigned long long)(span / NSEC_PER_SEC),
		       (unsigned long long)(span % NSEC_PER_SEC / (NSEC_PER_SEC / 10)));
	else
		append(rec->summary, sizeof(rec->summary), &len, "%llu s",
		       (unsigned long long)((span + NSEC_PER_SEC / 2) / NSEC_PER_SEC));
	for (size_t i = 0; i < cl->ngroups; i++) {
		group_label(&cl->groups[order[i]].cause, label, sizeof(label));
		append(rec->summary, sizeof(rec->summary), &len, "%s%s ×%u", i ? ", " : ": ", label,
		       cl->groups[order[i]].count);
	}
	if (cl->other_count)
		append(rec->summary, sizeof(rec->summary), &len, "%sother causes ×%u", cl->ngroups ? ", " : ": ",
		       cl->other_count);
}

int crashloop_record_death(struct crashloop *cl, uint64_t now_ns, const struct death *d,
			   struct crashloop_record *ret_record)
{
	struct death rec;
	uint32_t in_window = 0;
	size_t first = 0;

	if (!cl || !d || !crashloop_valid(cl) || (int)d->cause.kind < DEATH_UNKNOWN || d->cause.kind >= DEATH_KIND_MAX)
		return -EINVAL;
	if (cl->n && now_ns < cl->last_death_ns)
		now_ns = cl->last_death_ns;
	/* A quiet window ends whatever was going on. */
	if (cl->n && now_ns - cl->last_death_ns > cl->window_ns) {
		uint64_t window_ns = cl->window_ns;
		uint32_t threshold = cl->threshold;
		(void)crashloop_init(cl, window_ns, threshold);
	}

	rec = *d;
	rec.at_ns = now_ns;
	if (rec.cause.kind == DEATH_EXITED && rec.cause.code == 0 && rec.child_oom_killed_recently)
		rec.cause.kind = DEATH_EXIT0_AFTER_CHILD_OOM;
	ring_push(cl, &rec);
	cl->last_death_ns = now_ns;

	if (cl->looping) {
		cl->loop_deaths++;
		group_add(cl, &rec.cause);
		if (now_ns - cl->last_emit_ns < cl->window_ns)
			return 0;
	} else {
		for (size_t i = cl->n; i > 0; i--) {
			if (now_ns - ring_at(cl, i - 1)->at_ns > cl->window_ns)
				break;
			in_window++;
			first = i - 1;
		}
		if (in_window < cl->threshold)
			return 0;
		cl->looping = true;
		cl->loop_start_ns = ring_at(cl, first)->at_ns;
		cl->loop_deaths = in_window;
		for (size_t i = first; i < cl->n; i++)
			group_add(cl, &ring_at(cl, i)->cause);
	}
	cl->last_emit_ns = now_ns;
	if (ret_record)
		fill_record(cl, ret_record);
	return 1;
}

bool crashloop_active(const struct crashloop *cl, uint64_t now_ns)
{
	return cl && cl->looping && (now_ns < cl->last_death_ns || now_ns - cl->last_death_ns <= cl->window_ns);
}

int idleloop_init(struct idleloop *il, uint32_t threshold)
{
	if (!il)
		return -EINVAL;
	if (!threshold)
		threshold = CRASHLOOP_DEFAULT_THRESHOLD;
	if (threshold < 2 || threshold > CRASHLOOP_MAX_DEATHS)
		return -EINVAL;
	*il = (struct idleloop){ .threshold = threshold, .next_report = threshold };
	return 0;
}

int idleloop_note_stop(struct idleloop *il, uint64_t now_ns, bool idle, double growth_bytes_per_s,
		       struct idleloop_record *ret)
{
	double span_s, every_s, mib_s;
	size_t len = 0;

	if (!il || il->threshold < 2 || il->threshold > CRASHLOOP_MAX_DEATHS || il->next_report < il->threshold)
		return -EINVAL;
	if (!idle) {
		(void)idleloop_init(il, il->threshold);
		return 0;
	}
	if (!(growth_bytes_per_s > 0.0) || !isfinite(growth_bytes_per_s))
		growth_bytes_per_s = 0.0;
	if (il->stops && now_ns < il->last_ns)
		now_ns = il->last_ns;
	if (!il->stops)
		il->first_ns = now_ns;
	if (il->stops < UINT32_MAX)
		il->stops++;
	il->last_ns = now_ns;
	il->growth_sum += growth_bytes_per_s;
	if (il->stops < il->next_report)
		return 0;
	il->next_report = il->next_report > UINT32_MAX / 2 ? UINT32_MAX : il->next_report * 2;
	if (!ret)
		return 1;
	span_s = (double)(il->last_ns - il->first_ns) / 1e9;
	every_s = span_s / (double)(il->stops - 1);
	mib_s = il->growth_sum / (double)il->stops / (1024.0 * 1024.0);
	memset(ret, 0, sizeof(*ret));
	ret->stops = il->stops;
	ret->first_ns = il->first_ns;
	ret->last_ns = il->last_ns;
	ret->every_s = every_s;
	ret->growth_bytes_per_s = il->growth_sum / (double)il->stops;
	append(ret->summary, sizeof(ret->summary), &len,
	       "stopped by oomsentry %u times in a row in %.*f s (every %.*f s), idle each time, no prompt run between: "
	       "the server itself grows", il->stops, span_s < 10 ? 1 : 0, span_s, every_s < 10 ? 1 : 0, every_s);
	if (mib_s >= 0.5)
		append(ret->summary, sizeof(ret->summary), &len, " %.0f MiB/s", mib_s);
	append(ret->summary, sizeof(ret->summary), &len,
	       " while nothing runs, into memory only a restart frees (a custom node's background thread, a cache?); "
	       "each stop keeps the kernel's OOM killer away, none cures the leak");
	return 1;
}
