/*
 * fuzz_config: the text parsers an administrator (or a compromised
 * config-management push) feeds the daemon: config_load, the policy table
 * and group files (src/policy.c) on the same bytes, and policy_addr_parse
 * on each line (envelope addresses come from SMTP clients).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/config.h"
#include "fuzz_msg.h"
#include "src/outcome.h"
#include "src/policy.h"

static char path[300];

static void
cleanup(void)
{
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "%s/input.conf", fuzz_tmpdir("config"));
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct policy_word words[] = {
	    {"sign", POLICY_SIGN}, {"nosign", POLICY_NOSIGN}, {NULL, 0}};
	struct errbuf eb;
	struct config *c;
	struct policy_groups *g;
	struct policy_table *t;
	FILE *f;
	char *line, *p, *nl;

	if (size > (1u << 16))
		return 0;
	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);

	if ((c = config_load(path, &eb)) != NULL)
		config_free(c);
	else if (strnlen(eb.msg, sizeof(eb.msg)) == sizeof(eb.msg))
		abort();
	g = policy_groups_load(path, &eb);
	t = policy_table_load(path, words, g, &eb);
	if (t != NULL) {
		struct mailaddr a;
		struct policy_match m;
		if (policy_addr_parse("<Alice@Example.ORG.>", &a) == 0)
			(void)policy_table_lookup(t, &a, &m);
		policy_table_free(t);
	}
	policy_groups_free(g);

	line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';
	for (p = line; p != NULL; p = nl) {
		struct mailaddr a;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		if (policy_addr_parse(p, &a) == 0) {
			if (strlen(a.full) > POLICY_ADDR_MAX ||
			    strlen(a.domain) > POLICY_DOMAIN_MAX)
				abort();
		}
	}
	free(line);
	return 0;
}
