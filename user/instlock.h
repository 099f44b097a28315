/* SPDX-License-Identifier: GPL-2.0 */
/* One daemon per ComfyUI instance: an flock on RUNTIME_DIR/instance-HOST_PORT.lock for each configured URL, held
 * for the daemon's life. Two daemons acting on one server would both climb the ladder (and the second used to
 * unlink the first's status socket). The instance is its URL, whatever its section is called. */
#ifndef OOMSENTRY_INSTLOCK_H
#define OOMSENTRY_INSTLOCK_H

#include <stddef.h>
#include "config.h"

/* The lock file name for url: "instance-127.0.0.1_8188.lock"; anything but [A-Za-z0-9.-] becomes '_'.
 * 0, -EINVAL, -ENAMETOOLONG. */
int instlock_name(const char *url, char *buf, size_t len);
/* Locks every instance of cfg, writing our pid into each lock file. fds[CONFIG_MAX_INSTANCES] receives the open
 * descriptors (-1 where none). Returns 0, -EBUSY when another process holds one (err says which and its pid),
 * or another negative errno (err says what failed). On failure nothing stays locked. */
int instlock_acquire(const struct config *cfg, int *fds, char *err, size_t errlen);
void instlock_release(int *fds);

#endif
