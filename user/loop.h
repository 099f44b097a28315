/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon: one thread, one epoll loop over the BPF ring buffer, timers, signals, the metrics endpoint and the
 * status socket. All state lives in struct daemon (context.h); per-ComfyUI-server state in struct instance
 * (instance.c). Only main.c includes this. */
#ifndef OOMSENTRY_LOOP_H
#define OOMSENTRY_LOOP_H

#include <stdbool.h>
#include "config.h"
#include "context.h"

#define DAEMON_REEXEC 3 /* daemon_main's return: SIGHUP with a valid configuration, re-execute */

/* Entry from main(): runs the command; returns the process exit status (0 clean, 1 config, 2 cannot run) or
 * DAEMON_REEXEC. */
int daemon_main(const struct config *cfg, enum daemon_mode mode, bool reap, const char *arg,
		reload_check_fn reload_check);

#endif
