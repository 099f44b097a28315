// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: the lineage file under the state directory. Whatever parses must format and parse back to the
 * same lineage: what `oomsentry scan` believes is exactly what the daemon wrote. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lineage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lineage a, b;
	char *text = NULL;

	if (lineage_parse((const char *)data, size, &a) < 0)
		return 0;
	if (lineage_format(&a, &text) < 0)
		abort();
	if (lineage_parse(text, strlen(text), &b) < 0 || a.n != b.n || a.home.known != b.home.known ||
	    memcmp(a.entries, b.entries, a.n * sizeof(a.entries[0])) != 0 ||
	    (a.home.known && (a.home.pid != b.home.pid || a.home.uid != b.home.uid || strcmp(a.home.exe, b.home.exe) ||
			      strcmp(a.home.cwd, b.home.cwd) || strcmp(a.home.cgroup, b.home.cgroup) ||
			      strcmp(a.home.cmdline, b.home.cmdline))))
		abort();
	free(text);
	return 0;
}
