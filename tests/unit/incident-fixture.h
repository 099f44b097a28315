/* SPDX-License-Identifier: GPL-2.0 */
/* One incident as the daemon would record it and the timeline it must render to, shared by the tests of the
 * incident model (test_incident.c) and of its store (test_incident_store.c); include after <cmocka.h>. */
#ifndef OOMSENTRY_TEST_INCIDENT_FIXTURE_H
#define OOMSENTRY_TEST_INCIDENT_FIXTURE_H

#include <stdint.h>
#include "common.h"
#include "incident.h"

#define T0 (1700000000ULL * NSEC_PER_SEC) /* 2023-11-14 22:13:20 UTC */
#define SEC(x) ((uint64_t)(x) * NSEC_PER_SEC)
#define MSEC(x) ((uint64_t)(x) * NSEC_PER_MSEC)

static const unsigned usage_mib[] = { 6000, 6050, 6100, 6400, 6800, 7000, 7100, 7200,
				      7250, 7300, 7350, 7400, 7420, 7420, 6608, 6608 };

/* Samples every 5 s from -60 s to +15 s; events and generations as the daemon would record them. */
static inline struct incident *build(void)
{
	struct incident *inc = NULL;
	size_t i;

	assert_int_equal(incident_new("default", INCIDENT_TRIGGER_FORECAST, T0, &inc), 0);
	/* Added out of order on purpose: the incident keeps them sorted. */
	for (i = ARRAY_SIZE(usage_mib); i > 0; i--)
		assert_int_equal(incident_add_sample(inc, T0 - SEC(60) + SEC(5) * (i - 1), MIB(usage_mib[i - 1]),
						     MIB(8192)), 0);
	assert_int_equal(incident_add_event(inc, T0 - SEC(42), INCIDENT_EVENT_GENERATION,
					    "generation 3 started (prompt abc)"), 0);
	assert_int_equal(incident_add_event(inc, T0 + SEC(1), INCIDENT_EVENT_ACTION, "/free unload_models"), 0);
	assert_int_equal(incident_add_eventf(inc, T0, INCIDENT_EVENT_PRESSURE, "forecast: %.1f generations left", 0.8),
			 0);
	assert_int_equal(incident_add_eventf(inc, T0 + SEC(6), INCIDENT_EVENT_RESULT, "freed %d MiB", 812), 0);
	assert_int_equal(incident_add_event(inc, T0 - MSEC(250), INCIDENT_EVENT_NOTE, "reclaim <rising> & \"fast\""), 0);
	assert_int_equal(incident_add_generation(inc, 2, "abc-prev", MIB(7000), MIB(5900)), 0);
	assert_int_equal(incident_add_generation(inc, 3, "abc", MIB(7420), MIB(6100)), 0);
	assert_int_equal(incident_set_outcome(inc, INCIDENT_OUTCOME_PREVENTED, "unload_models brought memory back",
					      MIB(812)), 0);
	return inc;
}

static const char expected_timeline[] =
	"oomsentry incident\n"
	"instance:  default\n"
	"trigger:   forecast\n"
	"time:      2023-11-14 22:13:20 UTC\n"
	"outcome:   prevented: unload_models brought memory back (freed 812 MiB)\n"
	"memory:    peak 7.25 GiB, limit 8.00 GiB (90.6 %), 16 samples from -60.0 s to +15.0 s\n"
	"\n"
	"      time           usage  kind        event\n"
	"   -42.0 s        6.25 GiB  generation  generation 3 started (prompt abc)\n"
	"    -0.3 s        7.23 GiB  note        reclaim <rising> & \"fast\"\n"
	"    +0.0 s        7.25 GiB  trigger     forecast\n"
	"    +0.0 s        7.25 GiB  pressure    forecast: 0.8 generations left\n"
	"    +1.0 s        7.25 GiB  action      /free unload_models\n"
	"    +6.0 s        7.25 GiB  result      freed 812 MiB\n"
	"\n"
	"generations:\n"
	"   seq  prompt                                          peak        residual\n"
	"     2  abc-prev                                    6.84 GiB        5.76 GiB\n"
	"     3  abc                                         7.25 GiB        5.96 GiB\n";

#endif
