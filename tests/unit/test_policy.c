/*
 * Unit tests for policy: envelope address parsing, InternalDomains sets,
 * the group file, policy tables (every pattern kind and the precedence
 * order), load errors naming file and line, the outbound signing decision,
 * and a 10,000-entry table.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/policy.h"

#define MAXTMP 32
static char tmpfiles[MAXTMP][64];
static int ntmp;

/* Writes text to a fresh temporary file and returns its path. */
static const char *
write_file(const char *text)
{
	char *path;
	FILE *fp;
	int fd;

	cr_assert_lt(ntmp, MAXTMP);
	path = tmpfiles[ntmp++];
	strcpy(path, "/tmp/smgpolXXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	fp = fdopen(fd, "w");
	cr_assert_not_null(fp);
	cr_assert_eq(fputs(text, fp) >= 0, 1);
	cr_assert_eq(fclose(fp), 0);
	return path;
}

static void
cleanup(void)
{
	while (ntmp > 0)
		unlink(tmpfiles[--ntmp]);
}

TestSuite(policy, .fini = cleanup);

/* ---- addresses ---------------------------------------------------------- */

static void
addr_ok(const char *text, const char *local, const char *domain, const char *full)
{
	struct mailaddr a;

	cr_assert_eq(policy_addr_parse(text, &a), 0, "%s rejected", text);
	cr_assert_eq(a.null, 0, "%s", text);
	cr_assert_str_eq(a.local, local, "%s", text);
	cr_assert_str_eq(a.domain, domain, "%s", text);
	cr_assert_str_eq(a.full, full, "%s", text);
}

static void
addr_bad(const char *text)
{
	struct mailaddr a;

	cr_assert_eq(policy_addr_parse(text, &a), -1, "%s accepted as %s", text, a.full);
}

Test(policy, addr_parse)
{
	struct mailaddr a;
	char big[600];

	addr_ok("user@example.org", "user", "example.org", "user@example.org");
	addr_ok("<User@Example.ORG.>", "user", "example.org", "user@example.org");
	addr_ok("  <user@example.org>  ", "user", "example.org", "user@example.org");
	addr_ok("<@relay1.net,@relay2.net:Joe@Example.org>", "joe", "example.org",
	        "joe@example.org");
	addr_ok("@relay.net:joe@example.org", "joe", "example.org", "joe@example.org");
	addr_ok("<\"odd@local\"@example.org>", "odd@local", "example.org", "odd@local@example.org");
	addr_ok("\"John Smith\"@example.org", "john smith", "example.org",
	        "john smith@example.org");
	addr_ok("\"a\\\"b\"@example.org", "a\"b", "example.org", "a\"b@example.org");
	addr_ok("a.\"b c\".d@example.org", "a.b c.d", "example.org", "a.b c.d@example.org");
	addr_ok("user+tag@[192.0.2.1]", "user+tag", "[192.0.2.1]", "user+tag@[192.0.2.1]");
	addr_ok("postmaster", "postmaster", "", "postmaster");

	cr_assert_eq(policy_addr_parse("<>", &a), 0);
	cr_assert_eq(a.null, 1);
	cr_assert_str_eq(a.full, "");
	cr_assert_eq(policy_addr_parse("", &a), 0);
	cr_assert_eq(a.null, 1);
	cr_assert_eq(policy_addr_parse("  < >  ", &a), 0);
	cr_assert_eq(a.null, 1);

	addr_bad(NULL);
	addr_bad("<user@example.org");
	addr_bad("user@example.org>");
	addr_bad("\"unterminated@example.org");
	addr_bad("@example.org");
	addr_bad("<@relay.net>");
	addr_bad("<@relay.net:>");
	addr_bad("user@");
	addr_bad("user@.");
	addr_bad("\"\"@example.org");
	addr_bad("user@exa\"mple.org");
	addr_bad("us\ner@example.org");
	addr_bad("user@exam\tple.org");

	memset(big, 'a', 300);
	strcpy(big + 300, "@example.org");
	addr_bad(big);
	memset(big, 'A', 256);
	strcpy(big + 256, "@example.org");
	cr_assert_eq(policy_addr_parse(big, &a), 0);
	cr_assert_eq(strlen(a.local), 256);
	cr_assert_eq(a.local[255], 'a');
	memset(big, 'a', 250);
	big[250] = '@';
	memset(big + 251, 'b', 256);
	big[507] = '\0';
	addr_bad(big);
}

/* ---- InternalDomains ---------------------------------------------------- */

static struct policy_domains *
mkdomains(const char *const *words, struct errbuf *eb)
{
	struct strlist l = {0, (char **)words};

	while (words[l.n] != NULL)
		l.n++;
	return policy_domains_new(&l, eb);
}

Test(policy, domains)
{
	const char *w[] = {"example.org", ".Sub.Example.NET", "[192.0.2.1]", "trail.org.", NULL};
	struct errbuf eb = {{0}};
	struct policy_domains *ds = mkdomains(w, &eb);

	cr_assert_not_null(ds, "%s", eb.msg);
	cr_assert(policy_domains_match(ds, "example.org"));
	cr_assert(policy_domains_match(ds, "EXAMPLE.org."));
	cr_assert_not(policy_domains_match(ds, "a.example.org"), "exact entry matched a subdomain");
	cr_assert_not(policy_domains_match(ds, "notexample.org"));
	cr_assert(policy_domains_match(ds, "a.sub.example.net"));
	cr_assert(policy_domains_match(ds, "x.y.SUB.example.net"));
	cr_assert_not(policy_domains_match(ds, "sub.example.net"), ".domain matched its parent");
	cr_assert_not(policy_domains_match(ds, "asub.example.net"));
	cr_assert_not(policy_domains_match(ds, "example.net"));
	cr_assert(policy_domains_match(ds, "[192.0.2.1]"));
	cr_assert(policy_domains_match(ds, "trail.org"));
	cr_assert_not(policy_domains_match(ds, ""));
	cr_assert_not(policy_domains_match(ds, "."));
	cr_assert_not(policy_domains_match(ds, NULL));
	cr_assert_not(policy_domains_match(NULL, "example.org"));
	policy_domains_free(ds);
	policy_domains_free(NULL);
}

Test(policy, domains_bad)
{
	static const char *const cases[][2] = {
	    {"a..b", "bad domain \"a..b\": empty label in domain"},
	    {"*.example.org", "bad domain \"*.example.org\": invalid character in domain"},
	    {".", "bad domain \".\": empty or too long"},
	    {"user@example.org", "bad domain \"user@example.org\": invalid character"},
	    {"[1.2.3.4", "bad domain \"[1.2.3.4\": malformed domain literal"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *w[] = {"example.org", cases[i][0], NULL};
		struct errbuf eb = {{0}};

		cr_assert_null(mkdomains(w, &eb), "%s accepted", cases[i][0]);
		cr_assert(strstr(eb.msg, cases[i][1]) != NULL, "got \"%s\", want \"%s\"", eb.msg,
		          cases[i][1]);
	}
}

/* ---- groups -------------------------------------------------------------- */

static const char groups_text[] = "# staff and friends\n"
                                  "staff: alice@example.org, Bob@Example.ORG\n"
                                  "\t@Corp.Example.COM.,\n"
                                  "   \"John Smith\"@example.net\n"
                                  "\n"
                                  "# indented comment inside nothing\n"
                                  "Sales : bob@example.org eve@corp.example.com,dave@example.org,\n"
                                  "  @sales.example.com\n"
                                  "empty:\n";

Test(policy, groups)
{
	struct errbuf eb = {{0}};
	struct policy_groups *gs = policy_groups_load(write_file(groups_text), &eb);
	struct mailaddr a;

	cr_assert_not_null(gs, "%s", eb.msg);
	cr_assert_eq(policy_groups_count(gs), 3);
#define IN(g, addr, want)                                                                          \
	do {                                                                                       \
		cr_assert_eq(policy_addr_parse(addr, &a), 0);                                      \
		cr_assert_eq(policy_groups_contains(gs, g, &a), want, "%s in %s", addr, g);        \
	} while (0)
	IN("staff", "alice@example.org", 1);
	IN("STAFF", "<ALICE@example.org.>", 1);
	IN("staff", "bob@example.org", 1);
	IN("staff", "anyone@corp.example.com", 1);
	IN("staff", "anyone@x.corp.example.com", 0); /* @domain is that domain only */
	IN("staff", "\"john smith\"@example.net", 1);
	IN("staff", "john smith@example.net", 1); /* quoting does not change the address */
	IN("staff", "dave@example.org", 0);
	IN("sales", "dave@example.org", 1);
	IN("sales", "eve@corp.example.com", 1);
	IN("sales", "x@sales.example.com", 1);
	IN("sales", "alice@example.org", 0);
	IN("empty", "alice@example.org", 0);
	IN("nosuch", "alice@example.org", 0);
	IN("staff", "<>", 0);
#undef IN
	policy_groups_free(gs);
	policy_groups_free(NULL);
}

/* Expects loading text as a group file to fail with "FILE:want". */
static void
groups_bad(const char *text, const char *want)
{
	struct errbuf eb = {{0}};
	const char *path = write_file(text);
	char exp[600];

	cr_assert_null(policy_groups_load(path, &eb), "accepted: %s", text);
	snprintf(exp, sizeof(exp), "%s:%s", path, want);
	cr_assert_str_eq(eb.msg, exp);
}

Test(policy, groups_bad)
{
	char *longline;

	groups_bad("a: x@y.org\nno colon here\n", "2: expected \"groupname: member, ...\"");
	groups_bad("# c\n  x@y.org\n", "2: continuation line without a group");
	groups_bad("a b: x@y.org\n", "1: bad group name \"a b\"");
	groups_bad(": x@y.org\n", "1: bad group name \"\"");
	groups_bad("a: x@y.org\nA: z@y.org\n", "2: group a defined twice");
	groups_bad("a: x@y.org, @bad..dom\n",
	           "1: group a: member \"@bad..dom\": empty label in domain");
	groups_bad("a: x@y.org\n\n  user@\n", "3: group a: member \"user@\": malformed address");
	groups_bad("a: justlocal\n", "1: group a: member \"justlocal\": address has no domain");
	groups_bad("a: \"@x\"@y.org\n",
	           "1: group a: member \"\"@x\"@y.org\": local part starts with '@'");
	groups_bad("a: <>\n", "1: group a: member \"<>\": malformed address");
	longline = malloc(POLICY_LINE_MAX + 100);
	cr_assert_not_null(longline);
	strcpy(longline, "a: x@y.org\nb: ");
	memset(longline + 14, 'z', POLICY_LINE_MAX);
	strcpy(longline + 14 + POLICY_LINE_MAX, "@y.org\n");
	groups_bad(longline, "2: line longer than 4096 bytes");
	free(longline);
}

Test(policy, groups_missing_file)
{
	struct errbuf eb = {{0}};

	cr_assert_null(policy_groups_load("/nonexistent/groups", &eb));
	cr_assert_str_eq(eb.msg, "/nonexistent/groups: No such file or directory");
}

/* ---- policy tables ------------------------------------------------------ */

static const char table_text[] = "# SignPolicy\n"
                                 "alice@example.org       nosign\n"  /* 2 */
                                 "group:staff             sign\n"    /* 3 */
                                 "Group:Sales             NoSign\n"  /* 4 */
                                 "@example.org            sign\n"    /* 5 */
                                 "sub.example.org         nosign\n"  /* 6 */
                                 ".example.org            nosign\n"  /* 7 */
                                 ".deep.example.org.      sign\n"    /* 8 */
                                 "\"John Smith\"@example.net sign\n" /* 9 */
                                 "  \n"
                                 "*                       nosign\n"; /* 11 */

/* Looks up addr and checks the action, the pattern and the line. */
static void
expect(const struct policy_table *t, const char *addr, int action, const char *pattern,
       unsigned line)
{
	struct policy_match m;
	struct mailaddr a;

	cr_assert_eq(policy_addr_parse(addr, &a), 0, "%s", addr);
	cr_assert_eq(policy_table_lookup(t, &a, &m), action, "%s: action %d, want %d", addr,
	             m.action, action);
	cr_assert_eq(m.action, action);
	cr_assert_eq(m.line, line, "%s: line %u, want %u", addr, m.line, line);
	if (pattern == NULL)
		cr_assert_null(m.pattern, "%s", addr);
	else
		cr_assert_str_eq(m.pattern, pattern, "%s", addr);
}

Test(policy, table_precedence)
{
	struct errbuf eb = {{0}};
	struct policy_groups *gs = policy_groups_load(write_file(groups_text), &eb);
	struct policy_table *t;
	struct policy_match m;
	struct mailaddr a;

	cr_assert_not_null(gs, "%s", eb.msg);
	t = policy_table_load(write_file(table_text), policy_sign_words, gs, &eb);
	cr_assert_not_null(t, "%s", eb.msg);
	policy_groups_free(gs); /* the table keeps its own copy */
	cr_assert_eq(policy_table_count(t), 9);

	/* 1. exact address beats everything, alice is also in group staff */
	expect(t, "alice@example.org", POLICY_NOSIGN, "alice@example.org", 2);
	expect(t, "<ALICE@Example.Org.>", POLICY_NOSIGN, "alice@example.org", 2);
	expect(t, "<\"john SMITH\"@example.NET>", POLICY_SIGN, "john smith@example.net", 9);
	/* 2. groups beat @domain: bob is in staff (line 3) and sales (line 4) */
	expect(t, "bob@example.org", POLICY_SIGN, "group:staff", 3);
	/* dave is only in sales; the group beats @example.org on line 5 */
	expect(t, "dave@example.org", POLICY_NOSIGN, "group:sales", 4);
	m.word = NULL;
	cr_assert_eq(policy_addr_parse("dave@example.org", &a), 0);
	policy_table_lookup(t, &a, &m);
	cr_assert_str_eq(m.word, "NoSign");
	/* eve: address member of sales (4) but @domain member of staff (3): earlier line wins */
	expect(t, "eve@corp.example.com", POLICY_SIGN, "group:staff", 3);
	expect(t, "x@sales.example.com", POLICY_NOSIGN, "group:sales", 4);
	/* 3. @domain */
	expect(t, "frank@example.org", POLICY_SIGN, "@example.org", 5);
	/* bare domain is @domain, and beats the .example.org suffix */
	expect(t, "x@sub.example.org", POLICY_NOSIGN, "@sub.example.org", 6);
	/* 4. .domain, longest suffix wins; the parent is not matched */
	expect(t, "x@a.sub.example.org", POLICY_NOSIGN, ".example.org", 7);
	expect(t, "x@b.deep.example.org", POLICY_SIGN, ".deep.example.org", 8);
	expect(t, "x@c.b.DEEP.example.org", POLICY_SIGN, ".deep.example.org", 8);
	expect(t, "x@deep.example.org", POLICY_NOSIGN, ".example.org", 7);
	/* 5. * */
	expect(t, "x@example.com", POLICY_NOSIGN, "*", 11);
	expect(t, "x@corp.example.com.evil", POLICY_NOSIGN, "*", 11);
	expect(t, "<>", POLICY_NOSIGN, "*", 11);
	expect(t, "postmaster", POLICY_NOSIGN, "*", 11);
	policy_table_free(t);
	policy_table_free(NULL);
}

Test(policy, table_nomatch_and_custom_words)
{
	static const struct policy_word enc[] = {
	    {"encrypt", 7}, {"noencrypt", 0}, {"if-cert", 3}, {NULL, 0}};
	struct errbuf eb = {{0}};
	struct policy_table *t = policy_table_load(write_file("@a.org encrypt\n"
	                                                      ".b.org IF-CERT\n"
	                                                      "x@c.org noencrypt\n"),
	                                           enc, NULL, &eb);
	struct policy_match m;
	struct mailaddr a;

	cr_assert_not_null(t, "%s", eb.msg);
	expect(t, "u@a.org", 7, "@a.org", 1);
	expect(t, "u@x.b.org", 3, ".b.org", 2);
	expect(t, "x@c.org", 0, "x@c.org", 3);
	expect(t, "y@c.org", POLICY_NOMATCH, NULL, 0);
	expect(t, "u@b.org", POLICY_NOMATCH, NULL, 0);
	expect(t, "<>", POLICY_NOMATCH, NULL, 0);
	cr_assert_eq(policy_addr_parse("u@a.org", &a), 0);
	cr_assert_eq(policy_table_lookup(NULL, &a, &m), POLICY_NOMATCH);
	cr_assert_eq(m.line, 0);
	cr_assert_null(m.word);
	policy_table_free(t);
}

/* Expects loading text as a table to fail with "FILE:want". */
static void
table_bad(const char *text, const struct policy_groups *gs, const char *want)
{
	struct errbuf eb = {{0}};
	const char *path = write_file(text);
	char exp[600];

	cr_assert_null(policy_table_load(path, policy_sign_words, gs, &eb), "accepted: %s", text);
	snprintf(exp, sizeof(exp), "%s:%s", path, want);
	cr_assert_str_eq(eb.msg, exp);
}

Test(policy, table_bad)
{
	struct errbuf eb = {{0}};
	struct policy_groups *gs = policy_groups_load(write_file("staff: a@b.org\n"), &eb);
	char *longline;

	cr_assert_not_null(gs, "%s", eb.msg);
	table_bad("a@b.org sign\n@b.org encrypt\n", gs, "2: @b.org: unknown action \"encrypt\"");
	table_bad("# x\n\ngroup:nosuch sign\n", gs, "3: group:nosuch: unknown group");
	table_bad("group:staff sign\n", NULL, "1: group:staff: no GroupFile is configured");
	table_bad("group:st@ff sign\n", gs, "1: group:st@ff: bad group name");
	table_bad("example.org sign\n@Example.ORG. nosign\n", gs,
	          "2: @Example.ORG.: duplicate pattern (first on line 1)");
	table_bad("* sign\nx@y.org sign\n* nosign\n", gs,
	          "3: *: duplicate pattern (first on line 1)");
	table_bad("group:staff sign\ngroup:STAFF nosign\n", gs,
	          "2: group:STAFF: duplicate pattern (first on line 1)");
	table_bad(".a.org sign\n.A.org sign\n", gs,
	          "2: .A.org: duplicate pattern (first on line 1)");
	table_bad("u@a.org sign\n<U@A.org> sign\n", gs,
	          "2: <U@A.org>: duplicate pattern (first on line 1)");
	table_bad("x@y.org\n", gs, "1: x@y.org: missing action");
	table_bad("x@y.org sign please\n", gs, "1: x@y.org: text after the action");
	table_bad("a..b sign\n", gs, "1: a..b: empty label in domain");
	table_bad("@ sign\n", gs, "1: @: empty or overlong domain");
	table_bad("user@ sign\n", gs, "1: user@: malformed address");
	table_bad("*.example.org sign\n", gs, "1: *.example.org: invalid character in domain");
	longline = malloc(POLICY_LINE_MAX + 100);
	cr_assert_not_null(longline);
	memset(longline, 'z', POLICY_LINE_MAX + 10);
	strcpy(longline + POLICY_LINE_MAX + 10, " sign\n");
	table_bad(longline, gs, "1: line longer than 4096 bytes");
	free(longline);
	policy_groups_free(gs);

	cr_assert_null(policy_table_load("/nonexistent/table", policy_sign_words, NULL, &eb));
	cr_assert_str_eq(eb.msg, "/nonexistent/table: No such file or directory");
}

/* ---- outbound signing decision ----------------------------------------- */

Test(policy, sign_decide)
{
	const char *dw[] = {"example.org", ".example.org", NULL};
	char *nw[] = {"192.0.2.0/24", "2001:db8::/32"};
	struct strlist nl_words = {2, nw};
	struct errbuf eb = {{0}};
	struct policy_signcfg cfg = {0};
	struct policy_sign_decision d;
	struct policy_domains *ds = mkdomains(dw, &eb);
	struct netlist *nl = netlist_new(&nl_words, &eb);
	struct policy_table *t;

	cr_assert_not_null(ds, "%s", eb.msg);
	cr_assert_not_null(nl, "%s", eb.msg);
	t = policy_table_load(write_file("# c\n"
	                                 "ceo@example.org sign\n"
	                                 "@example.org nosign\n"),
	                      policy_sign_words, NULL, &eb);
	cr_assert_not_null(t, "%s", eb.msg);
	cfg.internal = ds;
	cfg.trusted = nl;
	cfg.table = t;
	cfg.sign_by_default = 1;

#define DECIDE(sender, client, auth, si, ob, sg, why)                                              \
	do {                                                                                       \
		policy_sign_decide(&cfg, sender, client, auth, &d);                                \
		cr_assert_eq(d.sender_internal, si, "%s: %s", sender, d.reason);                   \
		cr_assert_eq(d.outbound, ob, "%s: %s", sender, d.reason);                          \
		cr_assert_eq(d.sign, sg, "%s: %s", sender, d.reason);                              \
		cr_assert_str_eq(d.reason, why);                                                   \
	} while (0)

	DECIDE("<x@example.com>", "192.0.2.1", 1, 0, 0, 0, "sender domain not internal");
	DECIDE("<>", "192.0.2.1", 1, 0, 0, 0, "null sender");
	DECIDE("<postmaster>", "192.0.2.1", 1, 0, 0, 0, "sender address has no domain");
	DECIDE("<broken@example.org", "192.0.2.1", 1, 0, 0, 0, "sender address malformed");
	DECIDE(NULL, "192.0.2.1", 1, 0, 0, 0, "sender address malformed");
	DECIDE("<x@example.org>", "198.51.100.1", 0, 1, 0, 0,
	       "client not trusted and not authenticated");
	DECIDE("<x@example.org>", NULL, 0, 1, 0, 0, "client not trusted and not authenticated");
	DECIDE("<x@example.org>", "192.0.2.9", 0, 1, 1, 0,
	       "SignPolicy nosign for @example.org (line 3)");
	DECIDE("<CEO@example.org>", "::ffff:192.0.2.9", 0, 1, 1, 1,
	       "SignPolicy sign for ceo@example.org (line 2)");
	DECIDE("<ceo@example.org>", "198.51.100.1", 1, 1, 1, 1,
	       "SignPolicy sign for ceo@example.org (line 2)");
	DECIDE("<u@hr.example.org>", "2001:db8::25", 0, 1, 1, 1,
	       "no SignPolicy entry; SignByDefault yes");
	cfg.sign_by_default = 0;
	DECIDE("<u@hr.example.org>", "2001:db8::25", 0, 1, 1, 0,
	       "no SignPolicy entry; SignByDefault no");
	cfg.table = NULL;
	cfg.sign_by_default = 1;
	DECIDE("<ceo@example.org>", "192.0.2.1", 0, 1, 1, 1,
	       "no SignPolicy entry; SignByDefault yes");
	cfg.internal = NULL;
	DECIDE("<ceo@example.org>", "192.0.2.1", 0, 0, 0, 0, "sender domain not internal");
#undef DECIDE
	policy_table_free(t);
	policy_domains_free(ds);
	netlist_free(nl);
}

/* ---- many entries ------------------------------------------------------ */

/*
 * 10,000 entries of every kind with three action words; every entry is
 * looked up through an address it should win for, and some that must fall
 * through to a weaker rule.
 */
Test(policy, many_entries)
{
	static const struct policy_word w3[] = {{"a0", 0}, {"a1", 1}, {"a2", 2}, {NULL, 0}};
	struct errbuf eb = {{0}};
	struct policy_groups *gs;
	struct policy_table *t;
	char addr[128], pat[128], *text, *g;
	size_t cap = 1 << 20, len = 0;
	int i;

	/* One group with 1,000 members: m<i>@grp.test. */
	g = malloc(cap);
	cr_assert_not_null(g);
	len = (size_t)snprintf(g, cap, "big:");
	for (i = 0; i < 1000; i++)
		len += (size_t)snprintf(g + len, cap - len, "%s m%d@grp.test,\n", i ? " " : "", i);
	gs = policy_groups_load(write_file(g), &eb);
	cr_assert_not_null(gs, "%s", eb.msg);
	free(g);

	text = malloc(cap);
	cr_assert_not_null(text);
	len = 0;
	/* lines 1..4000: exact; 4001..7000: @domain; 7001..9998: .suffix; 9999 group; 10000 * */
	for (i = 0; i < 4000; i++)
		len += (size_t)snprintf(text + len, cap - len, "User%d@D%d.test a%d\n", i, i % 500,
		                        i % 3);
	for (i = 0; i < 3000; i++)
		len += (size_t)snprintf(text + len, cap - len, "@d%d.test a%d\n", i, (i + 1) % 3);
	for (i = 0; i < 2998; i++)
		len += (size_t)snprintf(text + len, cap - len, ".s%d.test a%d\n", i, (i + 2) % 3);
	len += (size_t)snprintf(text + len, cap - len, "group:big a1\n* a2\n");
	t = policy_table_load(write_file(text), w3, gs, &eb);
	free(text);
	policy_groups_free(gs);
	cr_assert_not_null(t, "%s", eb.msg);
	cr_assert_eq(policy_table_count(t), 10000);

	for (i = 0; i < 4000; i++) {
		snprintf(addr, sizeof(addr), "user%d@d%d.test", i, i % 500);
		expect(t, addr, i % 3, addr, (unsigned)i + 1);
		/* Same domain, other user: the @domain line. */
		snprintf(addr, sizeof(addr), "other%d@d%d.test", i, i % 500);
		snprintf(pat, sizeof(pat), "@d%d.test", i % 500);
		expect(t, addr, (i % 500 + 1) % 3, pat, 4001 + (unsigned)(i % 500));
	}
	for (i = 0; i < 3000; i++) {
		snprintf(addr, sizeof(addr), "x@D%d.TEST.", i);
		snprintf(pat, sizeof(pat), "@d%d.test", i);
		expect(t, addr, (i + 1) % 3, pat, 4001 + (unsigned)i);
		/* A subdomain of an @domain entry is not matched by it. */
		snprintf(addr, sizeof(addr), "x@sub.d%d.test", i);
		expect(t, addr, 2, "*", 10000);
	}
	for (i = 0; i < 2998; i++) {
		snprintf(addr, sizeof(addr), "x@a.b.s%d.test", i);
		snprintf(pat, sizeof(pat), ".s%d.test", i);
		expect(t, addr, (i + 2) % 3, pat, 7001 + (unsigned)i);
		snprintf(addr, sizeof(addr), "x@s%d.test", i);
		expect(t, addr, 2, "*", 10000);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "m%d@grp.test", i);
		expect(t, addr, 1, "group:big", 9999);
	}
	expect(t, "m1000@grp.test", 2, "*", 10000);
	policy_table_free(t);
}

/* ---- concurrent readers ------------------------------------------------ */

struct reader {
	const struct policy_table *t;
	const struct policy_domains *ds;
	int bad;
};

/* Looks up the same addresses many times; counts wrong answers. */
static void *
reader_run(void *arg)
{
	struct reader *r = arg;
	struct mailaddr a;
	int i;

	for (i = 0; i < 20000; i++) {
		policy_addr_parse(i % 2 ? "x@b.deep.example.org" : "frank@example.org", &a);
		if (policy_table_lookup(r->t, &a, NULL) != POLICY_SIGN)
			r->bad++;
		policy_addr_parse("x@corp.example.com", &a);
		if (policy_table_lookup(r->t, &a, NULL) != POLICY_NOSIGN)
			r->bad++;
		if (!policy_domains_match(r->ds, "a.sub.example.net") ||
		    policy_domains_match(r->ds, "sub.example.net"))
			r->bad++;
	}
	return NULL;
}

Test(policy, concurrent_readers)
{
	const char *dw[] = {".sub.example.net", NULL};
	struct errbuf eb = {{0}};
	struct policy_table *t = policy_table_load(write_file(".deep.example.org sign\n"
	                                                      "@example.org sign\n"
	                                                      "* nosign\n"),
	                                           policy_sign_words, NULL, &eb);
	struct policy_domains *ds = mkdomains(dw, &eb);
	struct reader r[4];
	pthread_t th[4];
	int i;

	cr_assert_not_null(t, "%s", eb.msg);
	cr_assert_not_null(ds, "%s", eb.msg);
	for (i = 0; i < 4; i++) {
		r[i] = (struct reader){t, ds, 0};
		cr_assert_eq(pthread_create(&th[i], NULL, reader_run, &r[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(th[i], NULL), 0);
		cr_assert_eq(r[i].bad, 0, "reader %d: %d wrong answers", i, r[i].bad);
	}
	policy_table_free(t);
	policy_domains_free(ds);
}
