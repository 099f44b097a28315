// SPDX-License-Identifier: GPL-2.0
#include "rssarm.h"

uint64_t rssarm_line(uint64_t limit_bytes, double warn_fraction, double rate_bps)
{
	double rate = rate_bps * 2 > RSSARM_RATE_FLOOR_BPS ? rate_bps * 2 : RSSARM_RATE_FLOOR_BPS;
	double warn = warn_fraction > 0 && warn_fraction < 1 ? warn_fraction : 1.0;
	double line = warn * (double)limit_bytes - rate * ((double)RSSARM_LEAD_NS / 1e9);

	return line > 0 ? (uint64_t)line / RSSARM_LINE_GRAIN * RSSARM_LINE_GRAIN : 0;
}

bool rssarm_wanted(const struct rssarm_view *v)
{
	uint64_t line;

	/* no server: no RSS event reaches the instance (instance_tree_has) */
	if (!v->server)
		return false;
	if (!v->limit_bytes || v->busy)
		return true;
	line = rssarm_line(v->limit_bytes, v->warn_fraction, v->rate_bps);
	return !line || v->usage_bytes >= line;
}
