// SPDX-License-Identifier: GPL-2.0
#include "dropsync.h"

unsigned dropsync_step(struct dropsync *s, uint64_t total, uint64_t now_ns)
{
	unsigned out = 0;

	if (!s->primed || total < s->seen) {
		/* the count of a daemon that started (or of probes loaded again) counts from here */
		s->primed = true;
		s->seen = total;
		return 0;
	}
	if (total > s->seen) {
		if (!s->last_drop_ns) {
			s->burst_drops = 0;
			s->burst_resyncs = 0;
		}
		s->burst_drops += total - s->seen;
		s->seen = total;
		s->last_drop_ns = now_ns;
		s->pending = true;
	} else if (s->last_drop_ns && !s->pending && now_ns - s->last_drop_ns >= DROPSYNC_QUIET_NS) {
		out |= DROPSYNC_BURST_END;
		s->last_drop_ns = 0;
	}
	if (s->pending && (!s->last_resync_ns || now_ns - s->last_resync_ns >= DROPSYNC_MIN_INTERVAL_NS)) {
		out |= DROPSYNC_RESYNC;
		/* the burst's one record goes with the resync that tells what it found */
		if (!s->burst_resyncs)
			out |= DROPSYNC_BURST;
		s->pending = false;
		s->last_resync_ns = now_ns;
		s->burst_resyncs++;
	}
	return out;
}

uint64_t dropsync_due_ns(const struct dropsync *s)
{
	if (s->pending)
		return s->last_resync_ns ? s->last_resync_ns + DROPSYNC_MIN_INTERVAL_NS : 0;
	if (s->last_drop_ns)
		return s->last_drop_ns + DROPSYNC_QUIET_NS;
	return UINT64_MAX;
}
