/* SPDX-License-Identifier: GPL-2.0 */
/* The controlled restart that keeps the queue. */
#ifndef OOMSENTRY_RESTART_H
#define OOMSENTRY_RESTART_H

#include <stddef.h>
#include <stdint.h>

struct instance;

/* Saves /queue and stops the server by the configured method (0 or negative errno, detail says what was done). */
int restart_begin(struct instance *in, uint64_t now_ns, char *detail, size_t len);
/* Called every sample: waits for a new server to answer and resubmits every saved prompt with its original id. */
void restart_step(struct instance *in, uint64_t now_ns);

#endif
