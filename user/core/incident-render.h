/* SPDX-License-Identifier: GPL-2.0 */
/* An incident for people: the text timeline and the SVG memory plot. Pure. */
#ifndef OOMSENTRY_INCIDENT_RENDER_H
#define OOMSENTRY_INCIDENT_RENDER_H

#include "incident.h"

/* *ret is malloc'd, NUL-terminated, owned by the caller. Return 0, -EINVAL, -ENOMEM. */
int incident_render_timeline(const struct incident *inc, char **ret);
int incident_render_svg(const struct incident *inc, char **ret);

#endif
