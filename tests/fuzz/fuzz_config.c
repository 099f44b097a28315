// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: the configuration as the file parser (inih and every key's value parser), the OOMSENTRY_*
 * environment and the command line flags see it, then the checks of config_finalize. A config file may be
 * written by a deployment tool, a ConfigMap or a user with sudo rights to one file; none of it may crash root. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	char path[64], err[512], *text, *env[64], *line, *save = NULL;
	size_t n = 0;
	int fd;

	/* the file, through the same path the daemon opens */
	config_defaults(&cfg);
	fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (config_load_file(&cfg, path, true, err, sizeof(err)) == 0)
			config_finalize(&cfg, err, sizeof(err));
	}
	close(fd);

	/* each line as an environment entry and as a flag */
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	config_defaults(&cfg);
	for (line = strtok_r(text, "\n", &save); line && n < 63; line = strtok_r(NULL, "\n", &save)) {
		env[n++] = line;
		config_apply_flag(&cfg, line, save, err, sizeof(err));
	}
	env[n] = NULL;
	config_load_env(&cfg, env, err, sizeof(err));
	config_finalize(&cfg, err, sizeof(err));
	free(text);
	return 0;
}
