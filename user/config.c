// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "common.h"
#include "config.h"

enum key_type { K_BOOL, K_BYTES, K_MS, K_FRACTION, K_UINT, K_STR, K_LIST, K_RESTART, K_VERBOSE, K_UID };

struct key {
	const char *name;
	enum key_type type;
	bool per_instance; /* lives in struct instance_config; the global form sets the default instance */
	size_t offset;
	size_t size; /* K_STR: buffer size */
	const char *help;
};

#define G(n, t, f, h) { n, t, false, offsetof(struct config, f), sizeof(((struct config *)0)->f), h }
#define I(n, t, f, h) { n, t, true, offsetof(struct instance_config, f), sizeof(((struct instance_config *)0)->f), h }

static const struct key keys[] = {
	G("comm_prefixes", K_LIST, comm_prefixes, "process names to track, comma separated (default python,comfy)"),
	G("cgroups", K_LIST, cgroups, "memory cgroup directories whose processes are tracked too"),
	G("rss_step", K_BYTES, rss_step_bytes, "report a process when its RSS moves by this much (default 64M; finer near the limit)"),
	G("mmap_threshold", K_BYTES, mmap_threshold_bytes, "report mmap/munmap of at least this size (default 64M)"),
	G("sample_interval", K_MS, sample_interval_ms, "cgroup/PSI sampling period (default 500ms)"),
	G("reclaim_report_interval", K_MS, reclaim_report_interval_ms, "at most one reclaim record per cgroup per (1s)"),
	G("poll_interval", K_MS, poll_interval_ms, "ComfyUI /queue polling period (default 500ms)"),
	G("http_timeout", K_MS, http_timeout_ms, "timeout of one ComfyUI request (default 3s)"),
	G("dry_run", K_BOOL, dry_run, "decide and journal, never act (default no)"),
	G("act_usage_fraction", K_FRACTION, act_usage_fraction, "act when usage crosses this fraction of the limit (0.90)"),
	G("forecast_margin", K_FRACTION, forecast_margin, "a generation 'fits' below this fraction of the limit (0.95)"),
	G("cooldown", K_MS, cooldown_ms, "minimum time between two uses of the same rung (30s)"),
	G("reap_orphans", K_BOOL, reap_orphans, "rung 1: terminate orphaned Python processes (default yes)"),
	G("orphan_grace", K_MS, orphan_grace_ms, "SIGTERM -> SIGKILL grace period for orphans (5s)"),
	G("orphan_min_rss", K_BYTES, orphan_min_rss_bytes, "ignore orphans smaller than this (0)"),
	G("orphan_min_age", K_MS, orphan_min_age_ms, "leave younger processes alone: they may be starting up (10s)"),
	G("orphan_uid", K_UID, orphan_uid, "only this user's processes can be orphans: a uid or any (any)"),
	G("kill", K_BOOL, kill, "last rung: SIGKILL the largest process of the server's tree (default no)"),
	G("crashloop_window", K_MS, crashloop_window_ms, "crash-loop detection window (60s)"),
	G("crashloop_threshold", K_UINT, crashloop_threshold, "deaths within the window that make a crash loop (3)"),
	G("json", K_BOOL, json, "print JSON lines instead of text (default no)"),
	G("journal", K_BOOL, journal, "send records to the journal (default yes; off when no journald runs)"),
	G("bpf", K_BOOL, bpf, "use the eBPF probes; no: /proc + cgroup polling (default yes)"),
	G("rss_probe_on_demand", K_BOOL, rss_probe_on_demand,
	  "run mode: attach rss_stat (runs on every page fault) only while a server is busy or near its limit (yes)"),
	G("memcg_events_probe", K_BOOL, memcg_events_probe, "also attach count_memcg_events: runs on every page fault of every process (no)"),
	G("priority", K_STR, priority,
	  "the daemon's scheduling: keep, high (nice -20) or realtime[:N] (SCHED_FIFO, N 1-99) (default high)"),
	G("metrics_listen", K_STR, metrics_listen, "Prometheus endpoint ADDR:PORT or off (default off)"),
	G("incident_dir", K_STR, incident_dir, "where incident reports go (/var/lib/oomsentry/incidents)"),
	G("state_dir", K_STR, state_dir, "what is learnt per instance and the servers' lineage, kept across restarts (/var/lib/oomsentry)"),
	G("incident_max_count", K_UINT, incident_max_count, "incident reports kept, oldest removed first (50)"),
	G("incident_max_size", K_BYTES, incident_max_bytes, "total size of the incident reports kept (64M)"),
	G("socket", K_STR, socket_path, "status socket (/run/oomsentry/oomsentry.sock)"),
	G("prekill_hook", K_STR, prekill_hook,
	  "systemd-oomd pre-kill hook socket, e.g. /run/systemd/oomd.prekill.hook/oomsentry, or off (default off)"),
	G("runtime_dir", K_STR, runtime_dir, "per-instance locks: one daemon per instance (/run/oomsentry)"),
	G("max_processes", K_UINT, max_processes, "process table cap; dead entries are evicted first (2048)"),
	G("ring_buffer_size", K_BYTES, ring_buffer_bytes, "BPF ring buffer, a power of two; events beyond it are dropped and the process table resynced from /proc (512K)"),
	G("verbose", K_VERBOSE, verbose, "more output; twice for libbpf debug"),
	I("url", K_STR, url, "ComfyUI base URL (default http://127.0.0.1:8188)"),
	I("auth_header", K_STR, auth_header, "extra HTTP header for ComfyUI, e.g. 'Authorization: Bearer T'"),
	I("pid_file", K_STR, pid_file, "file holding the ComfyUI server pid (default: found by its listening port)"),
	I("cmdline_pattern", K_STR, cmdline_pattern, "substring of the server's command line, to find it and its old instances"),
	I("cgroup", K_STR, cgroup, "memory cgroup directory of the server (default: read from /proc/PID/cgroup)"),
	I("restart", K_RESTART, restart_method, "controlled restart: none, signal, command or systemd (default none)"),
	I("restart_command", K_STR, restart_command, "shell command that restarts ComfyUI (restart=command)"),
	I("systemd_unit", K_STR, systemd_unit, "unit to restart over D-Bus (restart=systemd)"),
	I("websocket", K_BOOL, websocket, "follow ComfyUI's /ws for queue changes and generation boundaries (yes)"),
	I("free_after_each_generation", K_BOOL, free_after_each_generation, "POST /free after every generation (no)"),
	I("restart_every_generations", K_UINT, restart_every_generations, "controlled restart every N generations (0=off)"),
	I("restart_timeout", K_MS, restart_timeout_ms, "how long a restarted server may take to answer (120s)"),
	I("stop_grace", K_MS, stop_grace_ms, "a server that ignores the restart's stop is SIGKILLed after this (10s)"),
	I("last_resort_grace", K_MS, last_resort_grace_ms, "the last resort's SIGTERM -> SIGKILL + process_mrelease (2s)"),
	I("give_up_after", K_UINT, give_up_after, "drop a prompt that cannot fit even on a fresh server after it caused this many interrupts/restarts (2; 0=never)"),
	I("brake", K_BOOL, brake, "cgroup v2: hold memory.high just above usage while a gentle rung works against a near limit (yes)"),
};

static void set_err(char *errbuf, size_t errlen, const char *fmt, const char *a, const char *b)
{
	if (errbuf && errlen)
		snprintf(errbuf, errlen, fmt, a, b);
}

static void instance_defaults(struct instance_config *in, const char *name)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", name);
	snprintf(in->url, sizeof(in->url), "http://127.0.0.1:8188");
	in->restart_timeout_ms = 120000;
	in->stop_grace_ms = 10000;
	in->last_resort_grace_ms = 2000;
	in->give_up_after = 2;
	in->brake = true;
	in->websocket = true;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->comm_prefixes[0], sizeof(cfg->comm_prefixes[0]), "python");
	snprintf(cfg->comm_prefixes[1], sizeof(cfg->comm_prefixes[1]), "comfy");
	cfg->n_comm_prefixes = 2;
	cfg->rss_step_bytes = 64ULL << 20;
	cfg->rss_probe_on_demand = true;
	cfg->mmap_threshold_bytes = 64ULL << 20;
	cfg->sample_interval_ms = 500;
	cfg->reclaim_report_interval_ms = 1000;
	cfg->poll_interval_ms = 500;
	cfg->http_timeout_ms = 3000;
	cfg->act_usage_fraction = 0.90;
	cfg->forecast_margin = 0.95;
	cfg->cooldown_ms = 30000;
	cfg->reap_orphans = true;
	cfg->orphan_grace_ms = 5000;
	cfg->orphan_min_age_ms = 10000;
	cfg->orphan_uid = -1;
	cfg->crashloop_window_ms = 60000;
	cfg->crashloop_threshold = 3;
	cfg->journal = true;
	cfg->bpf = true;
	snprintf(cfg->metrics_listen, sizeof(cfg->metrics_listen), "off");
	/* the reaction to a step over the line waits for a CPU: behind every other task of the host at nice 0 */
	snprintf(cfg->priority, sizeof(cfg->priority), "high");
	snprintf(cfg->incident_dir, sizeof(cfg->incident_dir), "/var/lib/oomsentry/incidents");
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/oomsentry");
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "/run/oomsentry/oomsentry.sock");
	snprintf(cfg->prekill_hook, sizeof(cfg->prekill_hook), "off");
	snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "/run/oomsentry");
	cfg->incident_max_count = 50;
	cfg->incident_max_bytes = 64ULL << 20;
	cfg->max_processes = 2048;
	/* ~3300 events; the data is mapped twice into the daemon, all resident: 2 MiB of its RSS */
	cfg->ring_buffer_bytes = 512ULL << 10;
	instance_defaults(&cfg->instances[0], "default");
	cfg->n_instances = 1;
}

int config_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "1", "yes", "true", "on", "y" };
	static const char *const no[] = { "0", "no", "false", "off", "n" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (!strcasecmp(s, yes[i]))
			return *ret = true, 0;
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (!strcasecmp(s, no[i]))
			return *ret = false, 0;
	return -EINVAL;
}

/* A number with an optional unit; the unit table maps suffixes to multipliers. */
static int parse_scaled(const char *s, const char *const *units, const double *mult, size_t n, double dflt,
			double *ret)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	if (!*end) {
		*ret = v * dflt;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcasecmp(end, units[i])) {
			*ret = v * mult[i];
			return 0;
		}
	}
	return -EINVAL;
}

int config_parse_bytes(const char *s, uint64_t *ret)
{
	static const char *const u[] = { "b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib", "t", "tb", "tib" };
	static const double m[] = { 1, 0x1p10, 0x1p10, 0x1p10, 0x1p20, 0x1p20, 0x1p20, 0x1p30, 0x1p30, 0x1p30,
				    0x1p40, 0x1p40, 0x1p40 };
	double v;

	if (parse_scaled(s, u, m, ARRAY_SIZE(u), 1, &v) < 0 || v >= 0x1p63)
		return -EINVAL;
	*ret = (uint64_t)v;
	return 0;
}

int config_parse_duration_ms(const char *s, uint64_t *ret)
{
	static const char *const u[] = { "ms", "s", "sec", "m", "min", "h" };
	static const double m[] = { 1, 1000, 1000, 60000, 60000, 3600000 };
	double v;

	/* users convert to ns: the value must fit uint64 nanoseconds */
	if (parse_scaled(s, u, m, ARRAY_SIZE(u), 1, &v) < 0 || v > (double)(UINT64_MAX / NSEC_PER_MSEC))
		return -EINVAL;
	*ret = (uint64_t)v;
	return 0;
}

int config_parse_fraction(const char *s, double *ret)
{
	static const char *const u[] = { "%" };
	static const double m[] = { 0.01 };
	double v;

	if (parse_scaled(s, u, m, 1, 1, &v) < 0 || v <= 0 || v > 1)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_uint(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_restart(const char *s, enum restart_method *ret)
{
	static const char *const names[] = { "none", "signal", "command", "systemd" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(s, names[i]))
			return *ret = (enum restart_method)i, 0;
	return -EINVAL;
}

int config_url_host(const char *url, char *buf, size_t len)
{
	const char *p = url ? strstr(url, "://") : NULL, *end;

	if (!buf || !len)
		return -EINVAL;
	buf[0] = 0;
	if (!p)
		return -EINVAL;
	p += 3;
	end = *p == '[' ? strchr(p, ']') : p + strcspn(p, ":/");
	if (!end)
		return -EINVAL;
	if (*p == '[')
		end++;
	if ((size_t)(end - p) >= len)
		return -ENAMETOOLONG;
	snprintf(buf, len, "%.*s", (int)(end - p), p);
	return 0;
}

int config_url_port(const char *url, uint16_t *ret_port)
{
	const char *p = strstr(url, "://");
	const char *host_end;
	uint64_t port;
	char buf[8];
	size_t n;

	if (!p)
		return -EINVAL;
	p += 3;
	host_end = p + strcspn(p, "/");
	if (*p == '[') { /* [::1]:8188 */
		const char *close = memchr(p, ']', (size_t)(host_end - p));
		if (!close)
			return -EINVAL;
		p = close + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(host_end - p));
		p = colon ? colon : host_end;
	}
	if (p == host_end || *p != ':') {
		*ret_port = !strncmp(url, "https", 5) ? 443 : 80;
		return 0;
	}
	n = (size_t)(host_end - p - 1);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, p + 1, n);
	buf[n] = 0;
	if (parse_uint(buf, &port) < 0 || port == 0 || port > 65535)
		return -EINVAL;
	*ret_port = (uint16_t)port;
	return 0;
}

static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static struct instance_config *instance_get(struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_instances; i++)
		if (!strcmp(cfg->instances[i].name, name))
			return &cfg->instances[i];
	if (cfg->n_instances >= CONFIG_MAX_INSTANCES)
		return NULL;
	instance_defaults(&cfg->instances[cfg->n_instances], name);
	return &cfg->instances[cfg->n_instances++];
}

static int set_list(char *base, size_t total, size_t elem, int *count, const char *value)
{
	size_t max = total / elem;
	const char *p = value;
	int n = 0;

	while (*p) {
		size_t len;

		p += strspn(p, " ,");
		len = strcspn(p, ",");
		while (len && p[len - 1] == ' ')
			len--;
		if (!len)
			break;
		if ((size_t)n >= max || len >= elem)
			return -EINVAL;
		memcpy(base + (size_t)n * elem, p, len);
		base[(size_t)n * elem + len] = 0;
		n++;
		p += len;
	}
	*count = n;
	return 0;
}

static int key_set(struct config *cfg, struct instance_config *in, const struct key *k, const char *value)
{
	char *dst = k->per_instance ? (char *)in + k->offset : (char *)cfg + k->offset;
	int r = 0;

	switch (k->type) {
	case K_BOOL:
		r = config_parse_bool(value, (bool *)dst);
		break;
	case K_BYTES:
		r = config_parse_bytes(value, (uint64_t *)dst);
		break;
	case K_MS:
		r = config_parse_duration_ms(value, (uint64_t *)dst);
		break;
	case K_FRACTION:
		r = config_parse_fraction(value, (double *)dst);
		break;
	case K_UINT:
		r = parse_uint(value, (uint64_t *)dst);
		break;
	case K_STR:
		if (strlen(value) >= k->size)
			return -E2BIG;
		memcpy(dst, value, strlen(value) + 1);
		break;
	case K_LIST:
		if (dst == (char *)cfg->comm_prefixes)
			r = set_list(dst, k->size, sizeof(cfg->comm_prefixes[0]), &cfg->n_comm_prefixes, value);
		else
			r = set_list(dst, k->size, sizeof(cfg->cgroups[0]), &cfg->n_cgroups, value);
		break;
	case K_RESTART:
		r = parse_restart(value, (enum restart_method *)dst);
		break;
	case K_UID: {
		uint64_t v;
		if (!strcasecmp(value, "any"))
			*(int64_t *)dst = -1;
		else if (parse_uint(value, &v) == 0 && v < UINT32_MAX)
			*(int64_t *)dst = (int64_t)v;
		else
			r = -EINVAL;
		break;
	}
	case K_VERBOSE: {
		uint64_t v;
		bool b;
		if (config_parse_bool(value, &b) == 0)
			*(int *)dst = b;
		else if (parse_uint(value, &v) == 0 && v < 10)
			*(int *)dst = (int)v;
		else
			r = -EINVAL;
		break;
	}
	}
	return r;
}

static const char *type_hint(enum key_type t)
{
	switch (t) {
	case K_BOOL: return "yes or no";
	case K_BYTES: return "a size such as 64M or 1.5G";
	case K_MS: return "a duration such as 500ms, 5s or 2m";
	case K_FRACTION: return "a fraction in (0,1] such as 0.9 or 90%";
	case K_UINT: return "a whole number";
	case K_STR: return "a string (too long?)";
	case K_LIST: return "a comma separated list (at most 8 items)";
	case K_RESTART: return "none, signal, command or systemd";
	case K_VERBOSE: return "a number";
	case K_UID: return "a numeric uid or any";
	}
	return "?";
}

int config_set(struct config *cfg, const char *section, const char *key, const char *value, char *errbuf,
	       size_t errlen)
{
	struct instance_config *in = &cfg->instances[0];
	const struct key *k = key_find(key);
	char what[128];
	int r;

	if (!k) {
		set_err(errbuf, errlen, "unknown setting '%s'%s", key, " (see oomsentry --help)");
		return -EINVAL;
	}
	if (section && !strncmp(section, "instance ", 9)) {
		if (!k->per_instance) {
			set_err(errbuf, errlen, "'%s' belongs in [oomsentry], not in [%s]", key, section);
			return -EINVAL;
		}
		if (!section[9]) {
			set_err(errbuf, errlen, "[%s] needs a name%s", section, ", e.g. [instance sdxl]");
			return -EINVAL;
		}
		in = instance_get(cfg, section + 9);
		if (!in) {
			set_err(errbuf, errlen, "too many instances at [%s]%s", section, "");
			return -EINVAL;
		}
	} else if (section && *section && strcmp(section, "oomsentry")) {
		set_err(errbuf, errlen, "unknown section [%s]%s", section, " (use [oomsentry] or [instance NAME])");
		return -EINVAL;
	}
	if (k->per_instance && in == &cfg->instances[0])
		cfg->default_instance_set = true;
	r = key_set(cfg, in, k, value);
	if (r < 0) {
		snprintf(what, sizeof(what), "%s = '%.60s'", key, value);
		set_err(errbuf, errlen, "invalid value %s: expected %s", what, type_hint(k->type));
		return -EINVAL;
	}
	return 0;
}

struct ini_ctx {
	struct config *cfg;
	char *errbuf;
	size_t errlen;
	int failed;
};

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;

	if (c->failed)
		return 0;
	if (config_set(c->cfg, section, name, value, c->errbuf, c->errlen) < 0) {
		c->failed = 1;
		return 0;
	}
	return 1;
}

/* inih cuts lines longer than its buffer and parses the rest as the next line: refuse them instead. */
struct line_reader {
	FILE *f;
	int line;
	bool too_long;
	int read_errno;
};

static char *read_line(char *str, int num, void *stream)
{
	struct line_reader *lr = stream;
	size_t len;

	errno = 0;
	if (!fgets(str, num, lr->f)) {
		if (ferror(lr->f))
			lr->read_errno = errno ? errno : EIO;
		return NULL;
	}
	lr->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		int ch = fgetc(lr->f);

		if (ch != EOF) {
			lr->too_long = true;
			return NULL;
		}
	}
	return str;
}

int config_load_file(struct config *cfg, const char *path, bool required, char *errbuf, size_t errlen)
{
	struct ini_ctx c = { cfg, errbuf, errlen, 0 };
	char inner[256] = "";
	FILE *f = fopen(path, "re");
	struct line_reader lr = { f, 0, false, 0 };
	int line;

	if (!f) {
		if (!required && errno == ENOENT)
			return 0;
		snprintf(errbuf, errlen, "cannot read config %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	c.errbuf = inner;
	c.errlen = sizeof(inner);
	line = ini_parse_stream(read_line, &lr, on_ini_entry, &c);
	fclose(f);
	if (lr.read_errno) {
		snprintf(errbuf, errlen, "cannot read config %s: %s", path, strerror(lr.read_errno));
		return -EINVAL;
	}
	if (lr.too_long && line == 0) {
		snprintf(errbuf, errlen, "%s:%d: line too long", path, lr.line);
		return -EINVAL;
	}
	if (line != 0) {
		if (!inner[0])
			snprintf(inner, sizeof(inner), "syntax error");
		snprintf(errbuf, errlen, "%s:%d: %s", path, line, inner);
		return -EINVAL;
	}
	return 0;
}

int config_load_env(struct config *cfg, char *const *envp, char *errbuf, size_t errlen)
{
	for (char *const *e = envp; e && *e; e++) {
		char key[64], inner[200];
		const char *eq;
		size_t n;

		if (strncmp(*e, "OOMSENTRY_", 10))
			continue;
		eq = strchr(*e, '=');
		if (!eq)
			continue;
		n = (size_t)(eq - (*e + 10));
		if (n == 0 || n >= sizeof(key))
			continue;
		for (size_t i = 0; i < n; i++)
			key[i] = (char)tolower((unsigned char)(*e)[10 + i]);
		key[n] = 0;
		/* OOMSENTRY_CONFIG names the file itself, not a key */
		if (!strcmp(key, "config"))
			continue;
		if (config_set(cfg, NULL, key, eq + 1, inner, sizeof(inner)) < 0) {
			snprintf(errbuf, errlen, "environment OOMSENTRY_%.*s: %s", (int)n, *e + 10, inner);
			return -EINVAL;
		}
	}
	return 0;
}

int config_apply_flag(struct config *cfg, const char *arg, const char *next, char *errbuf, size_t errlen)
{
	char name[64], inner[200];
	const char *value = NULL, *eq;
	const struct key *k;
	size_t n;
	bool negate = false;
	int used = 1;

	if (strncmp(arg, "--", 2))
		return 0;
	arg += 2;
	eq = strchr(arg, '=');
	n = eq ? (size_t)(eq - arg) : strlen(arg);
	if (n >= sizeof(name))
		return 0;
	for (size_t i = 0; i < n; i++)
		name[i] = arg[i] == '-' ? '_' : arg[i];
	name[n] = 0;
	k = key_find(name);
	if (!k && !strncmp(name, "no_", 3)) {
		const struct key *nk = key_find(name + 3);

		if (!nk || nk->type != K_BOOL)
			return 0;
		k = nk;
		negate = true;
	} else if (k && k->type == K_BOOL && !eq) {
		value = "yes";
	}
	if (!k)
		return 0;
	if (negate) {
		value = "no";
	} else if (k->type == K_VERBOSE && !eq) {
		cfg->verbose++;
		return 1;
	} else if (eq) {
		value = eq + 1;
	} else if (!value) {
		if (!next) {
			snprintf(errbuf, errlen, "--%s needs a value: %s", arg, type_hint(k->type));
			return -EINVAL;
		}
		value = next;
		used = 2;
	}
	if (config_set(cfg, NULL, k->name, value, inner, sizeof(inner)) < 0) {
		snprintf(errbuf, errlen, "--%s: %s", arg, inner);
		return -EINVAL;
	}
	return used;
}

int config_parse_priority(const char *s, int *ret_nice, int *ret_fifo)
{
	char *end;
	long n;

	*ret_nice = 1;
	*ret_fifo = 0;
	if (!strcmp(s, "keep"))
		return 0;
	if (!strcmp(s, "high")) {
		*ret_nice = -20;
		return 0;
	}
	if (!strcmp(s, "realtime")) {
		*ret_fifo = 1;
		return 0;
	}
	if (strncmp(s, "realtime:", 9))
		return -EINVAL;
	errno = 0;
	n = strtol(s + 9, &end, 10);
	if (errno || end == s + 9 || *end || n < 1 || n > 99)
		return -EINVAL;
	*ret_fifo = (int)n;
	return 0;
}

int config_finalize(struct config *cfg, char *errbuf, size_t errlen)
{
	int nice_value, fifo;

	if (config_parse_priority(cfg->priority, &nice_value, &fifo) < 0) {
		snprintf(errbuf, errlen, "priority must be keep, high, realtime or realtime:N with N from 1 to 99, not '%s'",
			 cfg->priority);
		return -EINVAL;
	}
	/* below this a host with a few dozen python processes and their workers would already evict live entries */
	if (cfg->max_processes < 64) {
		snprintf(errbuf, errlen, "max_processes must be at least 64, not %llu",
			 (unsigned long long)cfg->max_processes);
		return -EINVAL;
	}
	if (!cfg->incident_max_count) {
		snprintf(errbuf, errlen, "incident_max_count must be at least 1 (the report being written)");
		return -EINVAL;
	}
	/* with [instance NAME] sections and no per-instance key of its own, the built-in default instance
	 * (127.0.0.1:8188) is not wanted: it would only report a server that is not there */
	if (cfg->n_instances > 1 && !cfg->default_instance_set) {
		memmove(&cfg->instances[0], &cfg->instances[1], sizeof(cfg->instances[0]) * (size_t)(cfg->n_instances - 1));
		cfg->n_instances--;
	}
	for (int i = 0; i < cfg->n_instances; i++) {
		struct instance_config *in = &cfg->instances[i];
		uint16_t port;

		if (strncmp(in->url, "http://", 7) && strncmp(in->url, "https://", 8)) {
			snprintf(errbuf, errlen, "instance %s: url '%.100s' must start with http:// or https://", in->name,
				 in->url);
			return -EINVAL;
		}
		if (config_url_port(in->url, &port) < 0) {
			snprintf(errbuf, errlen, "instance %s: url '%.100s' has an invalid port", in->name, in->url);
			return -EINVAL;
		}
		if (in->restart_method == RESTART_COMMAND && !in->restart_command[0]) {
			snprintf(errbuf, errlen, "instance %s: restart=command needs restart_command", in->name);
			return -EINVAL;
		}
		if (in->restart_method == RESTART_SYSTEMD && !in->systemd_unit[0]) {
			snprintf(errbuf, errlen, "instance %s: restart=systemd needs systemd_unit", in->name);
			return -EINVAL;
		}
	}
	if (cfg->sample_interval_ms < 10 || cfg->poll_interval_ms < 10) {
		snprintf(errbuf, errlen, "sample_interval and poll_interval must be at least 10ms");
		return -EINVAL;
	}
	/* the kernel wants a power-of-two multiple of the page size */
	if (cfg->ring_buffer_bytes < (uint64_t)sysconf(_SC_PAGESIZE) || cfg->ring_buffer_bytes > (1ULL << 30) ||
	    (cfg->ring_buffer_bytes & (cfg->ring_buffer_bytes - 1))) {
		snprintf(errbuf, errlen, "ring_buffer_size must be a power of two between the page size and 1G, not %llu",
			 (unsigned long long)cfg->ring_buffer_bytes);
		return -EINVAL;
	}
	if (cfg->rss_step_bytes < 4096) {
		snprintf(errbuf, errlen, "rss_step must be at least 4K");
		return -EINVAL;
	}
	if (cfg->crashloop_threshold < 2 || cfg->crashloop_threshold > 32) {
		snprintf(errbuf, errlen, "crashloop_threshold must be between 2 and 32");
		return -EINVAL;
	}
	return 0;
}

void config_print_help_keys(FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		char flag[48], env[48];
		size_t j;

		for (j = 0; keys[i].name[j] && j < sizeof(flag) - 1; j++)
			flag[j] = keys[i].name[j] == '_' ? '-' : keys[i].name[j];
		flag[j] = 0;
		for (j = 0; keys[i].name[j] && j < sizeof(env) - 1; j++)
			env[j] = (char)toupper((unsigned char)keys[i].name[j]);
		env[j] = 0;
		fprintf(out, "  --%-28s OOMSENTRY_%-27s %s\n", flag, env, keys[i].help);
	}
}

void config_dump(const struct config *cfg, FILE *out)
{
	fprintf(out, "[oomsentry]\ncomm_prefixes = ");
	for (int i = 0; i < cfg->n_comm_prefixes; i++)
		fprintf(out, "%s%s", i ? "," : "", cfg->comm_prefixes[i]);
	fprintf(out, "\nrss_step = %llu\nact_usage_fraction = %.3f\ndry_run = %s\nkill = %s\n",
		(unsigned long long)cfg->rss_step_bytes, cfg->act_usage_fraction, cfg->dry_run ? "yes" : "no",
		cfg->kill ? "yes" : "no");
	for (int i = 0; i < cfg->n_instances; i++)
		fprintf(out, "[instance %s]\nurl = %s\nrestart = %d\n", cfg->instances[i].name, cfg->instances[i].url,
			cfg->instances[i].restart_method);
}
