/*
 * Unit tests for the config parser: defaults, every value type, and bad
 * input, whose errors must name file, line and key.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "src/config.h"

static char tmpl[64];

/* Writes text to a fresh temporary file and returns its path. */
static const char *
write_conf(const char *text)
{
	int fd;

	strcpy(tmpl, "/tmp/smgcfgXXXXXX");
	fd = mkstemp(tmpl);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return tmpl;
}

static void
cleanup(void)
{
	if (tmpl[0] != '\0')
		unlink(tmpl);
	tmpl[0] = '\0';
}

TestSuite(config, .fini = cleanup);

Test(config, defaults)
{
	struct config *c = config_defaults();

	cr_assert_str_eq(c->socket, "unix:/run/smimegw/smimegw.sock");
	cr_assert_eq(c->max_message_size, 50u * 1024 * 1024);
	cr_assert_eq(c->on_oversize, ACTION_ACCEPT);
	cr_assert_eq(c->shutdown_timeout, 30);
	cr_assert_eq(c->socket_mode, 0660);
	cr_assert_str_eq(c->user, "");
	config_free(c);
}

Test(config, parses_every_type)
{
	struct errbuf eb;
	struct config *c = config_load(write_conf("# a comment\n"
						  "\n"
						  "Socket   inet:8891@127.0.0.1\n"
						  "  UserID smimegw:mail   \n"
						  "maximummessagesize 10M\n"
						  "OnOversizedMessage Reject\n"
						  "ShutdownTimeout 5\n"
						  "SocketMode 0600\n"
						  "SyslogFacility local3\n"
						  "LogLevel debug\n"
						  "PidFile /run/smimegw.pid\n"),
				       &eb);

	cr_assert_not_null(c, "%s", eb.msg);
	cr_assert_str_eq(c->socket, "inet:8891@127.0.0.1");
	cr_assert_str_eq(c->user, "smimegw:mail");
	cr_assert_eq(c->max_message_size, 10u * 1024 * 1024);
	cr_assert_eq(c->on_oversize, ACTION_REJECT);
	cr_assert_eq(c->shutdown_timeout, 5);
	cr_assert_eq(c->socket_mode, 0600);
	cr_assert_eq(c->syslog_facility, LOG_LOCAL3);
	cr_assert_eq(c->log_level, LOG_DEBUG);
	cr_assert_str_eq(c->pidfile, "/run/smimegw.pid");
	config_free(c);
}

struct bad_case {
	const char *text;
	const char *expect; /* substring of the error after the path */
};

static const struct bad_case bad_cases[] = {
    {"Socket unix:/x\nFrobnicate yes\n", ":2: Frobnicate: unknown key"},
    {"OnOversizedMessage bounce\n", ":1: OnOversizedMessage: \"bounce\" is not one of: accept, tempfail, reject"},
    {"MaximumMessageSize 12Q\n", ":1: MaximumMessageSize: \"12Q\" is not a size"},
    {"MaximumMessageSize 10\n", ":1: MaximumMessageSize: \"10\" is not a size from 1024"},
    {"MaximumMessageSize 99999999999999999999999\n", ":1: MaximumMessageSize:"},
    {"ShutdownTimeout -3\n", ":1: ShutdownTimeout: \"-3\" is not a number from 1 to 3600"},
    {"ShutdownTimeout 0\n", ":1: ShutdownTimeout: \"0\" is not a number"},
    {"ShutdownTimeout 12abc\n", ":1: ShutdownTimeout:"},
    {"Socket tcp:25\n", ":1: Socket: expected unix:/path or inet:PORT@HOST"},
    {"Socket inet:99999@localhost\n", ":1: Socket: expected inet:PORT@HOST"},
    {"Socket unix:relative/path\n", ":1: Socket: a unix socket needs an absolute path"},
    {"LogLevel loud\n", ":1: LogLevel: \"loud\""},
    {"SyslogFacility kern2\n", ":1: SyslogFacility:"},
    {"SocketMode 0999\n", ":1: SocketMode:"},
    {"PidFile relative.pid\n", ":1: PidFile: \"relative.pid\" is not an absolute path"},
    {"ShutdownTimeout 5\n# c\nShutdownTimeout 6\n", ":3: ShutdownTimeout: already set on line 1"},
    {"ShutdownTimeout\n", ":1: ShutdownTimeout: missing value"},
};

Test(config, bad_input_names_file_line_and_key)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct errbuf eb;
		const char *path = write_conf(bad_cases[i].text);
		struct config *c = config_load(path, &eb);

		cr_assert_null(c, "case %zu accepted", i);
		cr_assert(strncmp(eb.msg, path, strlen(path)) == 0, "case %zu: %s", i, eb.msg);
		cr_assert(strstr(eb.msg, bad_cases[i].expect) != NULL,
			  "case %zu: got \"%s\", want \"%s\"", i, eb.msg, bad_cases[i].expect);
		cleanup();
	}
}

Test(config, overlong_line_is_an_error)
{
	char *text = malloc(20000);
	struct errbuf eb;

	memset(text, 'a', 19998);
	text[19998] = '\n';
	text[19999] = '\0';
	cr_assert_null(config_load(write_conf(text), &eb));
	cr_assert(strstr(eb.msg, ":1: line longer than") != NULL, "%s", eb.msg);
	free(text);
}

Test(config, missing_file)
{
	struct errbuf eb;

	cr_assert_null(config_load("/nonexistent/smimegw.conf", &eb));
	cr_assert_str_eq(eb.msg, "/nonexistent/smimegw.conf: cannot open: No such file or directory");
}

Test(config, value_parsers)
{
	size_t sz;
	int b;

	cr_assert_eq(config_parse_size("1K", &sz), 0);
	cr_assert_eq(sz, 1024);
	cr_assert_eq(config_parse_size("2gb", &sz), 0);
	cr_assert_eq(sz, 2UL * 1024 * 1024 * 1024);
	cr_assert_eq(config_parse_size("", &sz), -1);
	cr_assert_eq(config_parse_size("K", &sz), -1);
	cr_assert_eq(config_parse_bool("On", &b), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(config_parse_bool("off", &b), 0);
	cr_assert_eq(b, 0);
	cr_assert_eq(config_parse_bool("maybe", &b), -1);
}

/* Every key in the table is documented in smimegw.conf(5). */
Test(config, every_key_is_documented)
{
	char *desc = NULL, *man = NULL, line[512];
	size_t desclen = 0, n = 0;
	FILE *fp = open_memstream(&desc, &desclen), *mf;

	config_describe(fp);
	fclose(fp);
	mf = fopen(TEST_SRCDIR "/../contrib/man/smimegw.conf.5", "r");
	cr_assert_not_null(mf);
	man = calloc(1, 1 << 20);
	n = fread(man, 1, (1 << 20) - 1, mf);
	fclose(mf);
	cr_assert(n > 0);
	fp = fmemopen(desc, desclen, "r");
	while (fgets(line, sizeof(line), fp) != NULL) {
		char key[128], pat[160];

		if (line[0] == ' ' || sscanf(line, "%127s", key) != 1)
			continue;
		snprintf(pat, sizeof(pat), ".B %s ", key);
		cr_expect(strstr(man, pat) != NULL, "%s is not documented in smimegw.conf.5", key);
	}
	fclose(fp);
	free(desc);
	free(man);
}
