/* SPDX-License-Identifier: GPL-2.0 */
/* Incident reports on disk (the incident itself: core/incident.h). */
#ifndef OOMSENTRY_INCIDENT_STORE_H
#define OOMSENTRY_INCIDENT_STORE_H

#include <stddef.h>
#include <stdio.h>
#include "incident.h"

/* Writes DIR/<YYYYmmddTHHMMSSZ>-<instance>-<trigger>[-N]/ with incident.json, timeline.txt and memory.svg.
 * DIR is created (0750) when missing. The report appears atomically: it is assembled in a hidden temporary
 * directory and renamed into place, never replacing an existing one. Directory 0750, files 0640.
 * ret_path (may be NULL) receives the report directory. Returns 0 or negative errno (-ENAMETOOLONG when
 * ret_path is too small; nothing is left behind on error), not logged: the caller says what the report was for. */
int incident_write(const struct incident *inc, const char *dir, char *ret_path, size_t ret_path_size);

/* `oomsentry report INCIDENT`: path_or_dir is a report directory or its incident.json. Prints the timeline
 * and the path of the SVG to out. Returns 0, -ENOENT (no such path / no incident.json there),
 * -EBADMSG (not an oomsentry incident), -EFBIG, other negative errno; errors are logged. */
int incident_load_and_print(const char *path_or_dir, FILE *out);

#endif
