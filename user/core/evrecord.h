/* SPDX-License-Identifier: GPL-2.0 */
/* Reading one ring buffer record (include/oomsentry/events.h): records are as long as their type needs, the
 * loop's handlers take a whole struct os_event. */
#ifndef OOMSENTRY_EVRECORD_H
#define OOMSENTRY_EVRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include "oomsentry/events.h"

/* Copies the record into *out, zeroing what it does not carry. False (and *out untouched) when it is shorter than
 * its type's length or than the header: the BPF object and this binary would disagree on the layout, and no byte
 * past size is read. A type this binary does not know is read as its header; its handlers ignore it. */
bool evrecord_decode(const void *data, size_t size, struct os_event *out);

#endif
