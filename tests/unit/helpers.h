/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers more than one unit test needs; include after <cmocka.h> (they assert). */
#ifndef OOMSENTRY_TEST_HELPERS_H
#define OOMSENTRY_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>

/* Fixture text through stdio, so that the parser tests need none of the readers under test elsewhere. */
static inline char *fixture_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t cap = 0, len = 0, n;

	assert_non_null(f);
	do {
		if (len + 4096 + 1 > cap) {
			cap = (len + 4096 + 1) * 2;
			text = realloc(text, cap);
			assert_non_null(text);
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	text[len] = '\0';
	return text;
}

#endif
