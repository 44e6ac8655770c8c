/*
 * netlist: client network matching for TrustedNetworks.  Entries are kept
 * per address family, grouped by prefix length; each group is a sorted array
 * of masked network addresses, so a lookup masks the client address once per
 * distinct prefix length and binary-searches.  Built once, never modified,
 * so concurrent readers need no lock.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "netlist.h"
#include "xmalloc.h"

#define V4_LEN 4
#define V6_LEN 16
/* Longest entry we accept: a bracketed full IPv6 address with a prefix. */
#define ENTRY_MAX 80

struct netgroup {
	unsigned plen;       /* prefix length in bits */
	size_t n;            /* number of networks */
	unsigned char *keys; /* n * width bytes: masked, sorted, unique */
};

struct family {
	size_t width; /* V4_LEN or V6_LEN */
	size_t ngroups;
	struct netgroup *groups; /* by decreasing prefix length */
};

struct netlist {
	size_t count;
	struct family v4, v6;
};

/* One parsed entry, used only while building. */
struct rawnet {
	unsigned plen;
	unsigned char a[V6_LEN];
};

static const unsigned char v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Clears every bit of a (width bytes) past the first plen bits. */
static void
mask_bits(unsigned char *a, size_t width, unsigned plen)
{
	size_t i;

	for (i = 0; i < width; i++) {
		if (plen >= 8) {
			plen -= 8;
			continue;
		}
		a[i] &= (unsigned char)(0xff00u >> plen);
		plen = 0;
	}
}

/* Parses a decimal prefix length no larger than max; -1 if malformed. */
static int
parse_plen(const char *s, unsigned max)
{
	unsigned v = 0;
	size_t i;

	if (s[0] == '\0' || strlen(s) > 3)
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v > max ? -1 : (int)v;
}

/*
 * Parses one entry into r; returns AF_INET or AF_INET6, or -1 with the
 * reason in eb.
 */
static int
parse_entry(const char *word, struct rawnet *r, struct errbuf *eb)
{
	char buf[ENTRY_MAX], chk[INET6_ADDRSTRLEN];
	unsigned char orig[V6_LEN];
	char *slash, *host;
	size_t len, width;
	int af, plen;

	if (strlcpy_checked(buf, word, sizeof(buf)) == -1) {
		err_set(eb, "bad network entry \"%.60s...\": too long", word);
		return -1;
	}
	host = buf;
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	len = strlen(host);
	if (host[0] == '[') {
		if (len < 2 || host[len - 1] != ']') {
			err_set(eb, "bad network entry \"%s\": unbalanced brackets", word);
			return -1;
		}
		host[len - 1] = '\0';
		host++;
	}
	memset(r, 0, sizeof(*r));
	if (strchr(host, ':') != NULL) {
		af = AF_INET6;
		width = V6_LEN;
	} else {
		af = AF_INET;
		width = V4_LEN;
	}
	if (inet_pton(af, host, r->a) != 1) {
		err_set(eb, "bad network entry \"%s\": not an %s address", word,
		        af == AF_INET ? "IPv4" : "IPv6");
		return -1;
	}
	if (slash == NULL)
		plen = (int)width * 8;
	else if ((plen = parse_plen(slash, (unsigned)width * 8)) == -1) {
		err_set(eb, "bad network entry \"%s\": prefix length must be 0..%u", word,
		        (unsigned)width * 8);
		return -1;
	}
	memcpy(orig, r->a, width);
	mask_bits(r->a, width, (unsigned)plen);
	if (memcmp(orig, r->a, width) != 0) {
		if (inet_ntop(af, r->a, chk, sizeof(chk)) == NULL)
			chk[0] = '\0';
		err_set(eb,
		        "bad network entry \"%s\": host bits set below /%d (did you mean %s/%d?)",
		        word, plen, chk, plen);
		return -1;
	}
	r->plen = (unsigned)plen;
	/* ::ffff:a.b.c.d/96+n denotes the IPv4 network a.b.c.d/n. */
	if (af == AF_INET6 && plen >= 96 && memcmp(r->a, v4mapped_prefix, 12) == 0) {
		memmove(r->a, r->a + 12, V4_LEN);
		memset(r->a + V4_LEN, 0, V6_LEN - V4_LEN);
		r->plen -= 96;
		af = AF_INET;
	}
	return af;
}

/* qsort order: longer prefixes first, then by address bytes. */
static int
rawnet_cmp(const void *a, const void *b)
{
	const struct rawnet *x = a, *y = b;

	if (x->plen != y->plen)
		return x->plen > y->plen ? -1 : 1;
	return memcmp(x->a, y->a, V6_LEN);
}

/* Turns n raw entries of one family into prefix-length groups. */
static void
family_build(struct family *f, size_t width, struct rawnet *raw, size_t n)
{
	size_t i, j;
	struct netgroup *g = NULL;

	f->width = width;
	if (n == 0)
		return;
	qsort(raw, n, sizeof(*raw), rawnet_cmp);
	for (i = 0; i < n; i++) {
		if (g == NULL || g->plen != raw[i].plen) {
			/* Count this group's members first so keys is sized once. */
			for (j = i; j < n && raw[j].plen == raw[i].plen; j++)
				;
			f->groups = xreallocarray(f->groups, f->ngroups + 1, sizeof(*f->groups));
			g = &f->groups[f->ngroups++];
			g->plen = raw[i].plen;
			g->n = 0;
			g->keys = xreallocarray(NULL, j - i, width);
		} else if (memcmp(g->keys + (g->n - 1) * width, raw[i].a, width) == 0) {
			continue; /* duplicate entry */
		}
		memcpy(g->keys + g->n * width, raw[i].a, width);
		g->n++;
	}
}

struct netlist *
netlist_new(const struct strlist *l, struct errbuf *eb)
{
	struct netlist *nl = NULL, *ret = NULL;
	struct rawnet *r4 = NULL, *r6 = NULL, r;
	size_t n4 = 0, n6 = 0, i;
	int af;

	if (l->n > NETLIST_MAX_ENTRIES) {
		err_set(eb, "too many network entries (%zu, limit %d)", l->n, NETLIST_MAX_ENTRIES);
		goto out;
	}
	nl = xcalloc(1, sizeof(*nl));
	if (l->n > 0) {
		r4 = xreallocarray(NULL, l->n, sizeof(*r4));
		r6 = xreallocarray(NULL, l->n, sizeof(*r6));
	}
	for (i = 0; i < l->n; i++) {
		if ((af = parse_entry(l->v[i], &r, eb)) == -1)
			goto out;
		if (af == AF_INET)
			r4[n4++] = r;
		else
			r6[n6++] = r;
	}
	family_build(&nl->v4, V4_LEN, r4, n4);
	family_build(&nl->v6, V6_LEN, r6, n6);
	nl->count = l->n;
	ret = nl;
	nl = NULL;
out:
	free(r4);
	free(r6);
	netlist_free(nl);
	return ret;
}

static void
family_free(struct family *f)
{
	size_t i;

	for (i = 0; i < f->ngroups; i++)
		free(f->groups[i].keys);
	free(f->groups);
}

void
netlist_free(struct netlist *nl)
{
	if (nl == NULL)
		return;
	family_free(&nl->v4);
	family_free(&nl->v6);
	free(nl);
}

size_t
netlist_count(const struct netlist *nl)
{
	return nl->count;
}

/* 1 if the address a (f->width bytes) lies in one of f's networks. */
static int
family_match(const struct family *f, const unsigned char *a)
{
	unsigned char k[V6_LEN];
	size_t i, lo, hi, mid;
	int c;

	for (i = 0; i < f->ngroups; i++) {
		const struct netgroup *g = &f->groups[i];

		memcpy(k, a, f->width);
		mask_bits(k, f->width, g->plen);
		lo = 0;
		hi = g->n;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			c = memcmp(k, g->keys + mid * f->width, f->width);
			if (c == 0)
				return 1;
			if (c < 0)
				hi = mid;
			else
				lo = mid + 1;
		}
	}
	return 0;
}

/* Matches a 16-byte IPv6 address, unwrapping IPv4-mapped ones. */
static int
match_v6(const struct netlist *nl, const unsigned char *a)
{
	if (memcmp(a, v4mapped_prefix, 12) == 0)
		return family_match(&nl->v4, a + 12);
	return family_match(&nl->v6, a);
}

int
netlist_match(const struct netlist *nl, const char *addr_text)
{
	char buf[ENTRY_MAX], *p, *e;
	unsigned char a[V6_LEN];
	size_t len;

	if (nl == NULL || addr_text == NULL)
		return 0;
	if (strncasecmp(addr_text, "IPv6:", 5) == 0)
		addr_text += 5;
	if (strlcpy_checked(buf, addr_text, sizeof(buf)) == -1)
		return 0;
	p = buf;
	len = strlen(p);
	if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
		p[len - 1] = '\0';
		p++;
	}
	if ((e = strchr(p, '%')) != NULL)
		*e = '\0';
	if (strchr(p, ':') == NULL) {
		if (inet_pton(AF_INET, p, a) != 1)
			return 0;
		return family_match(&nl->v4, a);
	}
	if (inet_pton(AF_INET6, p, a) != 1)
		return 0;
	return match_v6(nl, a);
}

int
netlist_match_sa(const struct netlist *nl, const struct sockaddr *sa)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (nl == NULL || sa == NULL)
		return 0;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		return family_match(&nl->v4, (const unsigned char *)&sin->sin_addr);
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		return match_v6(nl, (const unsigned char *)&sin6->sin6_addr);
	default:
		return 0;
	}
}
