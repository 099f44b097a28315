// SPDX-License-Identifier: GPL-2.0
/* oomsentry: argv and config, then hand over to the daemon loop or a one-shot command. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "journal.h"
#include "log.h"
#include "loop.h"

/* a reload whose execv failed: an exit status systemd restarts (EX_TEMPFAIL) */
#define EXIT_REEXEC_FAILED 75

extern char **environ;

static const char usage_text[] =
	"usage: oomsentry COMMAND [OPTIONS]\n"
	"\n"
	"Watches ComfyUI and the Python processes around it with eBPF and acts before the kernel's OOM killer does.\n"
	"\n"
	"Commands:\n"
	"  observe        watch and report (exec/fork/exit, RSS steps, reclaim, OOM victims, generations, leaks)\n"
	"  run            observe, and climb the prevention ladder: reap orphans -> /free models -> /free all ->\n"
	"                 interrupt + requeue -> controlled restart -> (kill, only with --kill)\n"
	"  scan [--reap]  report orphaned Python processes once (and terminate them with --reap)\n"
	"  status         ask the running daemon for its live table\n"
	"  report DIR     print an incident report written by the daemon\n"
	"\n"
	"General options:\n"
	"  -c, --config FILE              config file (default " CONFIG_DEFAULT_PATH ", env OOMSENTRY_CONFIG)\n"
	"  -v, --verbose                  more output (twice: libbpf debug)\n"
	"  -h, --help                     this text\n"
	"      --version                  print the version\n"
	"\n"
	"Every setting works as a flag, an OOMSENTRY_* environment variable, or a key in the config file\n"
	"([oomsentry] section; per ComfyUI server: [instance NAME] with url, restart, ...):\n";

static const char examples_text[] =
	"\nExamples:\n"
	"  oomsentry observe --json                       watch everything named python*/comfy*, JSON lines\n"
	"  oomsentry run --url http://127.0.0.1:8188 --restart signal\n"
	"  oomsentry run --dry-run                        show what would be done, do nothing\n"
	"  oomsentry scan --reap                          terminate orphans of crashed ComfyUI runs\n"
	"  journalctl -t oomsentry OOMSENTRY_EVENT=action   review what it did\n"
	"\nExit status: 0 clean, 1 configuration error, 2 cannot run (privileges, kernel).\n";

static void usage(FILE *out)
{
	fputs(usage_text, out);
	config_print_help_keys(out);
	fputs(examples_text, out);
}

static enum daemon_mode parse_mode(const char *s)
{
	if (!strcmp(s, "observe"))
		return MODE_OBSERVE;
	if (!strcmp(s, "run"))
		return MODE_RUN;
	if (!strcmp(s, "scan"))
		return MODE_SCAN;
	if (!strcmp(s, "status"))
		return MODE_STATUS;
	if (!strcmp(s, "report"))
		return MODE_REPORT;
	return MODE_INVALID;
}

struct cli {
	enum daemon_mode mode;
	bool reap;
	const char *positional;
};

static int saved_argc;
static char **saved_argv;

/* defaults < config file < OOMSENTRY_* < flags. Returns 0, or the exit status after printing why (help: -1). */
static int load_config(int argc, char **argv, struct config *cfg, struct cli *cli, char *err, size_t errlen)
{
	const char *config_path = getenv("OOMSENTRY_CONFIG");
	bool config_required = config_path != NULL;
	int r;

	config_defaults(cfg);
	*cli = (struct cli){ .mode = MODE_INVALID };
	/* the config file comes first so that environment and flags override it: find it before the rest */
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			config_path = argv[++i];
			config_required = true;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			config_path = argv[i] + 9;
			config_required = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "help")) {
			usage(stdout);
			return -1;
		} else if (!strcmp(argv[i], "--version")) {
			printf("oomsentry %s\n", OOMSENTRY_VERSION);
			return -1;
		}
	}
	if (!config_path)
		config_path = CONFIG_DEFAULT_PATH;
	if (config_load_file(cfg, config_path, config_required, err, errlen) < 0 ||
	    config_load_env(cfg, environ, err, errlen) < 0)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			i++;
			continue;
		}
		if (!strncmp(a, "--config=", 9))
			continue;
		if (!strcmp(a, "-v")) {
			cfg->verbose++;
			continue;
		}
		if (!strcmp(a, "--reap")) {
			cli->reap = true;
			continue;
		}
		if (a[0] == '-') {
			r = config_apply_flag(cfg, a, i + 1 < argc ? argv[i + 1] : NULL, err, errlen);
			if (r < 0)
				return 1;
			if (r == 0) {
				snprintf(err, errlen, "unknown option '%s' (see oomsentry --help)", a);
				return 1;
			}
			i += r - 1;
			continue;
		}
		if (cli->mode == MODE_INVALID) {
			cli->mode = parse_mode(a);
			if (cli->mode == MODE_INVALID) {
				snprintf(err, errlen, "unknown command '%s' (commands: observe, run, scan, status, report)", a);
				return 1;
			}
		} else if (cli->mode == MODE_REPORT && !cli->positional) {
			cli->positional = a;
		} else {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return 1;
		}
	}
	if (cli->mode == MODE_INVALID) {
		usage(stderr);
		snprintf(err, errlen, "no command given");
		return 1;
	}
	if (cli->reap && cli->mode != MODE_SCAN) {
		snprintf(err, errlen, "--reap belongs to 'oomsentry scan'");
		return 1;
	}
	if (cli->mode == MODE_REPORT && !cli->positional) {
		snprintf(err, errlen, "report needs the incident directory (see the daemon's incident records)");
		return 1;
	}
	return config_finalize(cfg, err, errlen) < 0 ? 1 : 0;
}

/* SIGHUP: the new configuration must load completely before the running daemon lets go of the old one. */
static int reload_check(char *err, size_t errlen)
{
	struct config *cfg = malloc(sizeof(*cfg));
	struct cli cli;
	int r;

	if (!cfg)
		return -ENOMEM;
	r = load_config(saved_argc, saved_argv, cfg, &cli, err, errlen);
	free(cfg);
	return r == 0 ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	struct cli cli;
	char err[512] = "";
	int r;

	saved_argc = argc;
	saved_argv = argv;
	r = load_config(argc, argv, &cfg, &cli, err, sizeof(err));
	if (r < 0)
		return 0;
	if (r > 0) {
		fprintf(stderr, "oomsentry: %s\n", err);
		return r;
	}
	log_setup(cfg.verbose ? LOG_DEBUG : LOG_INFO, LOG_TARGET_STDERR);
	r = daemon_main(&cfg, cli.mode, cli.reap, cli.positional, reload_check);
	if (r == DAEMON_REEXEC) {
		/* a fresh start with the new configuration: same pid, so systemd and supervisors see a reload */
		execv("/proc/self/exe", argv);
		/* not 1 or 2 (RestartPreventExitStatus= in deploy/oomsentry.service): systemd starts it again, with the
		 * new configuration, which was checked before */
		fprintf(stderr, "oomsentry: cannot re-execute itself for the reload: %s\n", strerror(errno));
		return EXIT_REEXEC_FAILED;
	}
	return r;
}
