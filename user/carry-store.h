/* SPDX-License-Identifier: GPL-2.0 */
/* What an instance has in flight, carried across the SIGHUP re-exec (core/carry.c) in STATE_DIR/inflight-NAME.json:
 * written atomically by the daemon that re-executes itself, read once by the image that follows and removed. */
#ifndef OOMSENTRY_CARRY_STORE_H
#define OOMSENTRY_CARRY_STORE_H

#include <stdint.h>

struct instance;

/* The daemon is about to re-execute itself: write what in has in flight. 0 or negative errno (journaled). */
int carry_store_save(struct instance *in, uint64_t now_ns);
/* At start: take over what the image before this one carried, when it was this process (a re-exec) in this boot
 * and recent. The file is removed whatever it held. 1 when something was taken over, 0 when there was nothing to
 * take, negative errno when a file was there and could not be used (journaled). */
int carry_store_load(struct instance *in, uint64_t now_ns);

#endif
