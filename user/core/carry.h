/* SPDX-License-Identifier: GPL-2.0 */
/* What a SIGHUP re-exec carries of an instance in the middle of a prevention, beyond what lives under state_dir
 * anyway (the saved queue, what was learnt): the interrupted prompt awaiting its requeue, the policy's state (its
 * escalation level, the rung awaiting its verification, every rung's last use, i.e. the cooldowns), the prompts
 * counted towards a give-up, a /free awaiting its effect, the floor /free left, and the open incident. Every time is
 * CLOCK_MONOTONIC, which runs on across execv, so deadlines carry as they are. Written by the daemon that
 * re-executes itself and read once by the image that follows (same pid, same boot, within CARRY_MAX_AGE_NS); a
 * file that is not that is ignored. Pure: JSON text in and out; the file is statefile.c's. */
#ifndef OOMSENTRY_CARRY_H
#define OOMSENTRY_CARRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "comfy.h"
#include "policy.h"

#define CARRY_VERSION 1
/* an execv takes milliseconds; a file older than this was left by a daemon that did not come back at once */
#define CARRY_MAX_AGE_NS (60ULL * 1000000000ULL)
#define CARRY_TEXT_MAX (64u << 20)
#define CARRY_BOOT_ID_MAX 40
#define CARRY_URL_MAX 512

struct carry {
	char boot_id[CARRY_BOOT_ID_MAX]; /* /proc/sys/kernel/random/boot_id: monotonic times mean nothing across boots */
	int32_t pid;                     /* the daemon that wrote it: a re-exec keeps its pid */
	uint64_t written_ns;             /* CLOCK_MONOTONIC */
	char url[CARRY_URL_MAX];         /* the instance's URL: a reload that points it elsewhere starts it afresh */
	int32_t server_pid;              /* the server all this is about (0: none known) */
	uint64_t server_start_ns;
	/* an interrupted prompt owed its requeue */
	bool requeue_pending;
	char requeue_id[COMFY_PROMPT_ID_MAX];
	int64_t requeue_number;
	char *requeue_prompt_json; /* JSON object text */
	char *requeue_extra_json;
	uint64_t requeue_deadline_ns;
	char requeued_id[COMFY_PROMPT_ID_MAX]; /* the requeue's new id: a running prompt with it is the requeued one */
	uint64_t interrupt_sent_ns;
	/* the ladder */
	struct policy_state ps;
	struct policy_giveup giveup;
	uint64_t generations_completed; /* the policy's marks count in these */
	/* a /free awaiting its effect, and what /free could not release */
	char free_pending_prompt[COMFY_PROMPT_ID_MAX];
	uint64_t free_sent_usage_bytes;
	bool floor_valid;
	uint64_t floor_bytes;
	uint64_t floor_gens;
	uint64_t restart_sent_ns;
	/* a rung's requests that were not answered when the daemon re-executed itself: they are sent again */
	bool resend_free;
	bool resend_unload;
	bool resend_free_memory;
	char resend_interrupt[COMFY_PROMPT_ID_MAX];
	char *incident_json; /* the open incident (incident_to_json), NULL when none */
};

void carry_free(struct carry *c);
/* 0, -EINVAL (NULL, an enum out of range), -ENOMEM. *ret malloc'd. */
int carry_to_json(const struct carry *c, char **ret);
/* 0, -EBADMSG (not a carry file of this version, a field missing or of the wrong type or range), -ENOMEM.
 * *ret is zeroed first and filled only on success. */
int carry_parse(const char *text, size_t len, struct carry *ret);
/* A file read at start applies to this image: written by this very process (a re-exec keeps the pid) in this
 * boot, no more than CARRY_MAX_AGE_NS ago, and not in the future. */
bool carry_applies(const struct carry *c, const char *boot_id, int32_t pid, uint64_t now_ns);

#endif
