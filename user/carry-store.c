// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "carry.h"
#include "carry-store.h"
#include "common.h"
#include "context.h"
#include "incident.h"
#include "instance-state.h"
#include "log.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "statefile.h"

static void file_name(const struct instance *in, char *buf, size_t len)
{
	snprintf(buf, len, "inflight-%s.json", in->ic->name);
}

/* monotonic times mean something only within the boot that counted them */
static int boot_id(char *buf, size_t len)
{
	_cleanup_free_ char *text = NULL;
	int r = procfs_read_text("/proc/sys/kernel/random/boot_id", 128, &text, NULL);

	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = 0;
	if (!text[0] || strlen(text) >= len)
		return -EBADMSG;
	snprintf(buf, len, "%s", text);
	return 0;
}

int carry_store_save(struct instance *in, uint64_t now_ns)
{
	_cleanup_free_ char *text = NULL;
	struct carry c = { 0 };
	char name[PATH_MAX];
	int r;

	if (!in->d->cfg->state_dir[0] || in->d->mode != MODE_RUN)
		return 0;
	r = boot_id(c.boot_id, sizeof(c.boot_id));
	if (r < 0)
		return log_warn_errno(r, "instance %s: cannot read the boot id; nothing in flight is carried over", in->ic->name);
	c.pid = (int32_t)getpid();
	snprintf(c.url, sizeof(c.url), "%s", in->ic->url);
	c.written_ns = now_ns;
	c.server_pid = in->server_pid;
	c.server_start_ns = in->server_start_ns;
	c.requeue_pending = in->requeue_pending && in->requeue.prompt_id[0];
	if (c.requeue_pending) {
		snprintf(c.requeue_id, sizeof(c.requeue_id), "%s", in->requeue.prompt_id);
		c.requeue_number = in->requeue.number;
		/* borrowed: only read by carry_to_json */
		c.requeue_prompt_json = in->requeue.prompt_json;
		c.requeue_extra_json = in->requeue.extra_json;
		c.requeue_deadline_ns = in->requeue_deadline_ns;
	}
	snprintf(c.requeued_id, sizeof(c.requeued_id), "%s", in->requeued_id);
	c.interrupt_sent_ns = in->interrupt_sent_ns;
	c.ps = in->ps;
	c.giveup = in->giveup;
	c.generations_completed = in->generations_completed;
	snprintf(c.free_pending_prompt, sizeof(c.free_pending_prompt), "%s", in->free_pending_prompt);
	c.free_sent_usage_bytes = in->free_sent_usage_bytes;
	c.floor_valid = in->floor_valid;
	c.floor_bytes = in->floor_bytes;
	c.floor_gens = in->floor_gens;
	c.restart_sent_ns = in->restart_sent_ns;
	c.resend_free = in->frees_in_flight > 0;
	c.resend_unload = in->in_flight_unload;
	c.resend_free_memory = in->in_flight_free_memory;
	if (in->interrupts_in_flight)
		snprintf(c.resend_interrupt, sizeof(c.resend_interrupt), "%s", in->in_flight_interrupt);
	if (in->incident && incident_to_json(in->incident, &c.incident_json) < 0)
		log_warn("instance %s: the open incident cannot be carried over; it is not written", in->ic->name);
	r = carry_to_json(&c, &text);
	free(c.incident_json);
	if (r < 0)
		return log_warn_errno(r, "instance %s: cannot put what is in flight into words; it is not carried over",
				      in->ic->name);
	file_name(in, name, sizeof(name));
	r = statefile_write(in->d->cfg->state_dir, name, text);
	if (r < 0)
		return log_warn_errno(r, "instance %s: cannot write %s/%s; what is in flight is not carried over",
				      in->ic->name, in->d->cfg->state_dir, name);
	return 0;
}

/* what /free could not release belongs to the server that showed it */
static bool same_server_alive(struct instance *in, const struct carry *c)
{
	struct proc_stat st;

	return c->server_pid > 0 && procfs_read_stat(proctree_root(in->d->pt), c->server_pid, &st) == 0 &&
	       st.start_ns == c->server_start_ns && st.state != 'Z';
}

int carry_store_load(struct instance *in, uint64_t now_ns)
{
	_cleanup_free_ char *text = NULL;
	char name[PATH_MAX], boot[CARRY_BOOT_ID_MAX], what[256] = "";
	struct carry c;
	size_t len = 0;
	int r;

	if (!in->d->cfg->state_dir[0] || in->d->mode != MODE_RUN)
		return 0;
	file_name(in, name, sizeof(name));
	r = statefile_read(in->d->cfg->state_dir, name, CARRY_TEXT_MAX, &text, &len);
	if (r == -ENOENT)
		return 0;
	/* read once: whatever it held, a later start must not take it for its own */
	statefile_remove(in->d->cfg->state_dir, name);
	if (r < 0)
		return log_warn_errno(r, "instance %s: cannot read %s/%s; nothing in flight is taken over", in->ic->name,
				      in->d->cfg->state_dir, name);
	r = carry_parse(text, len, &c);
	if (r < 0)
		return log_warn_errno(r, "instance %s: %s/%s is not what a reload writes; ignored", in->ic->name,
				      in->d->cfg->state_dir, name);
	if (boot_id(boot, sizeof(boot)) < 0 || !carry_applies(&c, boot, (int32_t)getpid(), now_ns)) {
		log_info("instance %s: %s/%s was left by another daemon or an earlier boot; ignored", in->ic->name,
			 in->d->cfg->state_dir, name);
		carry_free(&c);
		return 0;
	}
	if (strcmp(c.url, in->ic->url)) {
		log_notice("instance %s: its URL changed with the reload (%s, now %s): nothing in flight is taken over",
			   in->ic->name, c.url, in->ic->url);
		carry_free(&c);
		return 0;
	}
	in->ps = c.ps;
	in->giveup = c.giveup;
	in->generations_completed = c.generations_completed;
	in->interrupt_sent_ns = c.interrupt_sent_ns;
	in->restart_sent_ns = c.restart_sent_ns;
	snprintf(in->requeued_id, sizeof(in->requeued_id), "%s", c.requeued_id);
	snprintf(in->free_pending_prompt, sizeof(in->free_pending_prompt), "%s", c.free_pending_prompt);
	in->free_sent_usage_bytes = c.free_sent_usage_bytes;
	if (c.floor_valid && same_server_alive(in, &c)) {
		in->floor_valid = true;
		in->floor_bytes = c.floor_bytes;
		in->floor_gens = c.floor_gens;
	}
	if (c.requeue_pending) {
		saved_prompt_clear(&in->requeue);
		snprintf(in->requeue.prompt_id, sizeof(in->requeue.prompt_id), "%s", c.requeue_id);
		in->requeue.number = c.requeue_number;
		in->requeue.prompt_json = TAKE_PTR(c.requeue_prompt_json);
		in->requeue.extra_json = TAKE_PTR(c.requeue_extra_json);
		in->requeue_deadline_ns = c.requeue_deadline_ns;
		in->requeue_pending = true;
		snprintf(what, sizeof(what), "the requeue of prompt %.36s, ", in->requeue.prompt_id);
	}
	if (c.incident_json) {
		incident_free(in->incident);
		in->incident = NULL;
		if (incident_from_json(c.incident_json, &in->incident) < 0)
			log_warn("instance %s: the open incident carried over cannot be read back; it is not written",
				 in->ic->name);
	}
	log_notice("instance %s: taken over from before the reload: %sthe ladder at %s%s%s, the cooldowns%s%s%s%s",
		   in->ic->name, what, policy_rung_name(in->ps.floor), in->ps.awaiting ? ", awaiting the verdict on " : "",
		   in->ps.awaiting ? policy_rung_name(in->ps.last_rung) : "", in->incident ? ", the open incident" : "",
		   c.resend_free ? "; POST /free sent again" : "", c.resend_interrupt[0] ? "; POST /interrupt of prompt " : "",
		   c.resend_interrupt[0] ? c.resend_interrupt : "");
	/* answered or not, the image before never learnt: both are harmless twice, a lost /interrupt is not */
	if (c.resend_free || c.resend_interrupt[0])
		in->pending_resend = (struct resend){ c.resend_free, c.resend_unload, c.resend_free_memory, "" };
	if (c.resend_interrupt[0])
		snprintf(in->pending_resend.interrupt, sizeof(in->pending_resend.interrupt), "%s", c.resend_interrupt);
	carry_free(&c);
	return 1;
}
