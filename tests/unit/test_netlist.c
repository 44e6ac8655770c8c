/*
 * Unit tests for netlist: IPv4 and IPv6 CIDR and bare entries, IPv4-mapped
 * clients, the edges of each prefix (/0, /32, /128, first and last address
 * and their neighbours), socket addresses, and bad entries.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "src/netlist.h"

/* Builds a list from a NULL-terminated array of words; fails the test on error. */
static struct netlist *
mk(const char *const *words)
{
	struct strlist l = {0, NULL};
	struct errbuf eb = {{0}};
	struct netlist *nl;

	while (words[l.n] != NULL)
		l.n++;
	l.v = (char **)words;
	nl = netlist_new(&l, &eb);
	cr_assert_not_null(nl, "netlist_new: %s", eb.msg);
	return nl;
}

/* Expects building from one word to fail with an error containing want. */
static void
bad(const char *word, const char *want)
{
	const char *words[] = {"127.0.0.0/8", word};
	struct strlist l = {2, (char **)words};
	struct errbuf eb = {{0}};

	cr_assert_null(netlist_new(&l, &eb), "%s accepted", word);
	cr_assert(strstr(eb.msg, want) != NULL, "%s: got \"%s\", want \"%s\"", word, eb.msg, want);
	cr_assert(strncmp(strchr(eb.msg, '"') + 1, word, strlen(word) < 40 ? strlen(word) : 40) ==
	              0,
	          "error does not name the entry: %s", eb.msg);
}

Test(netlist, defaults)
{
	const char *w[] = {"127.0.0.0/8", "::1", NULL};
	struct netlist *nl = mk(w);

	cr_assert_eq(netlist_count(nl), 2);
	cr_assert(netlist_match(nl, "127.0.0.1"));
	cr_assert(netlist_match(nl, "127.255.255.255"));
	cr_assert(netlist_match(nl, "::1"));
	cr_assert(netlist_match(nl, "::ffff:127.0.0.1"));
	cr_assert(netlist_match(nl, "[::1]"));
	cr_assert(netlist_match(nl, "IPv6:::1"));
	cr_assert_not(netlist_match(nl, "128.0.0.1"));
	cr_assert_not(netlist_match(nl, "126.255.255.255"));
	cr_assert_not(netlist_match(nl, "::2"));
	cr_assert_not(netlist_match(nl, "::"));
	cr_assert_not(netlist_match(nl, "10.0.0.1"));
	netlist_free(nl);
}

Test(netlist, ipv4_edges)
{
	const char *w[] = {"192.0.2.0/24", "198.51.100.7", "203.0.113.9/32", "10.0.0.0/9", NULL};
	struct netlist *nl = mk(w);

	cr_assert(netlist_match(nl, "192.0.2.0"));
	cr_assert(netlist_match(nl, "192.0.2.255"));
	cr_assert_not(netlist_match(nl, "192.0.1.255"));
	cr_assert_not(netlist_match(nl, "192.0.3.0"));
	cr_assert(netlist_match(nl, "198.51.100.7"));
	cr_assert_not(netlist_match(nl, "198.51.100.6"));
	cr_assert_not(netlist_match(nl, "198.51.100.8"));
	cr_assert(netlist_match(nl, "203.0.113.9"));
	cr_assert_not(netlist_match(nl, "203.0.113.8"));
	cr_assert_not(netlist_match(nl, "203.0.113.10"));
	/* /9: 10.0.0.0 - 10.127.255.255 */
	cr_assert(netlist_match(nl, "10.127.255.255"));
	cr_assert_not(netlist_match(nl, "10.128.0.0"));
	cr_assert_not(netlist_match(nl, "9.255.255.255"));
	/* Not addresses. */
	cr_assert_not(netlist_match(nl, "192.0.2"));
	cr_assert_not(netlist_match(nl, "192.0.2.1.5"));
	cr_assert_not(netlist_match(nl, "unknown"));
	cr_assert_not(netlist_match(nl, ""));
	cr_assert_not(netlist_match(nl, NULL));
	netlist_free(nl);
}

Test(netlist, ipv6_edges)
{
	const char *w[] = {"2001:db8::/32", "2001:db9:1::5", "[fe80::]/10", "2a00::1/128", NULL};
	struct netlist *nl = mk(w);

	cr_assert(netlist_match(nl, "2001:db8::"));
	cr_assert(netlist_match(nl, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	cr_assert_not(netlist_match(nl, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
	cr_assert_not(netlist_match(nl, "2001:db9::"));
	cr_assert(netlist_match(nl, "2001:DB9:1::5"));
	cr_assert_not(netlist_match(nl, "2001:db9:1::4"));
	cr_assert_not(netlist_match(nl, "2001:db9:1::6"));
	cr_assert(netlist_match(nl, "2a00::1"));
	cr_assert_not(netlist_match(nl, "2a00::"));
	cr_assert_not(netlist_match(nl, "2a00::2"));
	/* /10: fe80:: - febf:ffff:... ; zone ids are ignored. */
	cr_assert(netlist_match(nl, "febf::1"));
	cr_assert(netlist_match(nl, "fe80::1%eth0"));
	cr_assert_not(netlist_match(nl, "fec0::"));
	cr_assert_not(netlist_match(nl, "fe7f:ffff::"));
	netlist_free(nl);
}

Test(netlist, slash_zero)
{
	const char *w4[] = {"0.0.0.0/0", NULL};
	const char *w6[] = {"::/0", NULL};
	struct netlist *nl4 = mk(w4), *nl6 = mk(w6);

	cr_assert(netlist_match(nl4, "0.0.0.0"));
	cr_assert(netlist_match(nl4, "255.255.255.255"));
	cr_assert(netlist_match(nl4, "::ffff:8.8.8.8"));
	cr_assert_not(netlist_match(nl4, "2001:db8::1"));
	cr_assert(netlist_match(nl6, "2001:db8::1"));
	cr_assert(netlist_match(nl6, "::"));
	/* A mapped client is an IPv4 client: ::/0 does not take it in. */
	cr_assert_not(netlist_match(nl6, "::ffff:8.8.8.8"));
	cr_assert_not(netlist_match(nl6, "8.8.8.8"));
	netlist_free(nl4);
	netlist_free(nl6);
}

Test(netlist, mapped)
{
	const char *w[] = {"192.0.2.0/25", "::ffff:198.51.100.0/120", NULL};
	struct netlist *nl = mk(w);

	cr_assert(netlist_match(nl, "::ffff:192.0.2.127"));
	cr_assert(netlist_match(nl, "::FFFF:192.0.2.1"));
	cr_assert(netlist_match(nl, "[::ffff:192.0.2.1]"));
	cr_assert_not(netlist_match(nl, "::ffff:192.0.2.128"));
	/* A mapped entry is an IPv4 entry: plain IPv4 clients match it. */
	cr_assert(netlist_match(nl, "198.51.100.200"));
	cr_assert(netlist_match(nl, "::ffff:198.51.100.0"));
	cr_assert_not(netlist_match(nl, "198.51.101.0"));
	/* Not mapped: the IPv4-compatible and NAT64 forms are plain IPv6. */
	cr_assert_not(netlist_match(nl, "::192.0.2.1"));
	cr_assert_not(netlist_match(nl, "64:ff9b::192.0.2.1"));
	netlist_free(nl);
}

Test(netlist, sockaddr)
{
	const char *w[] = {"192.0.2.0/24", "2001:db8::/48", NULL};
	struct netlist *nl = mk(w);
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr sun = {.sa_family = AF_UNIX};

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.77", &sin.sin_addr);
	cr_assert(netlist_match_sa(nl, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "192.0.3.77", &sin.sin_addr);
	cr_assert_not(netlist_match_sa(nl, (struct sockaddr *)&sin));

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:0:ffff::1", &sin6.sin6_addr);
	cr_assert(netlist_match_sa(nl, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "2001:db8:1::1", &sin6.sin6_addr);
	cr_assert_not(netlist_match_sa(nl, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	cr_assert(netlist_match_sa(nl, (struct sockaddr *)&sin6));

	cr_assert_not(netlist_match_sa(nl, &sun));
	cr_assert_not(netlist_match_sa(nl, NULL));
	netlist_free(nl);
}

Test(netlist, empty_and_duplicates)
{
	const char *none[] = {NULL};
	const char *dup[] = {"10.0.0.0/8", "10.0.0.0/8", "10.1.0.0/16", "::1", "[::1]", NULL};
	struct netlist *nl = mk(none);

	cr_assert_not(netlist_match(nl, "127.0.0.1"));
	cr_assert_not(netlist_match(nl, "::1"));
	netlist_free(nl);
	nl = mk(dup);
	cr_assert(netlist_match(nl, "10.1.2.3"));
	cr_assert(netlist_match(nl, "10.200.2.3"));
	cr_assert(netlist_match(nl, "::1"));
	netlist_free(nl);
	netlist_free(NULL);
}

Test(netlist, bad_entries)
{
	bad("10.0.0.0/33", "prefix length must be 0..32");
	bad("2001:db8::/129", "prefix length must be 0..128");
	bad("10.0.0.0/", "prefix length");
	bad("10.0.0.0/-1", "prefix length");
	bad("10.0.0.0/+8", "prefix length");
	bad("10.0.0.0/8x", "prefix length");
	bad("10.0.0.256", "not an IPv4 address");
	bad("10.0.0", "not an IPv4 address");
	bad("example.org", "not an IPv4 address");
	bad("2001:db8:::1", "not an IPv6 address");
	bad("[::1", "unbalanced brackets");
	bad("10.1.2.3/8", "host bits set below /8 (did you mean 10.0.0.0/8?)");
	bad("192.0.2.1/31", "did you mean 192.0.2.0/31?");
	bad("2001:db8::1/64", "did you mean 2001:db8::/64?");
	bad("::1/0", "did you mean ::/0?");
	bad("1111:2222:3333:4444:5555:6666:7777:8888:1111:2222:3333:4444:5555:6666:7777:8888/64",
	    "too long");
}

/* Many entries: each network's first and last address match, neighbours outside do not. */
Test(netlist, many)
{
	static char bufs[4000][48];
	static const char *w[4001];
	struct netlist *nl;
	char a[64];
	int i;

	for (i = 0; i < 2000; i++) {
		/* 10.x.y.0/28 networks spaced 64 addresses apart */
		snprintf(bufs[i], sizeof(bufs[i]), "10.%d.%d.%d/28", i / 1024, (i / 4) % 256,
		         (i % 4) * 64);
		snprintf(bufs[2000 + i], sizeof(bufs[0]), "2001:db8:%x::/48", i);
		w[i] = bufs[i];
		w[2000 + i] = bufs[2000 + i];
	}
	w[4000] = NULL;
	nl = mk(w);
	for (i = 0; i < 2000; i++) {
		int b = (i % 4) * 64;

		snprintf(a, sizeof(a), "10.%d.%d.%d", i / 1024, (i / 4) % 256, b);
		cr_assert(netlist_match(nl, a), "%s", a);
		snprintf(a, sizeof(a), "10.%d.%d.%d", i / 1024, (i / 4) % 256, b + 15);
		cr_assert(netlist_match(nl, a), "%s", a);
		snprintf(a, sizeof(a), "10.%d.%d.%d", i / 1024, (i / 4) % 256, b + 16);
		cr_assert_not(netlist_match(nl, a), "%s", a);
		snprintf(a, sizeof(a), "2001:db8:%x:ffff::1", i);
		cr_assert(netlist_match(nl, a), "%s", a);
	}
	cr_assert_not(netlist_match(nl, "2001:db8:7d0::1"));
	netlist_free(nl);
}
