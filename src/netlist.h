/*
 * netlist: a set of client networks (TrustedNetworks), loaded once into an
 * immutable matcher that any number of threads may query at once.
 *
 * Entry syntax, one word each (as split by the config parser):
 *	192.0.2.0/24	IPv4 network in CIDR form
 *	192.0.2.7	a single IPv4 address (same as /32)
 *	2001:db8::/32	IPv6 network in CIDR form
 *	::1		a single IPv6 address (same as /128)
 *	[::1]/128	IPv6 in Postfix mynetworks style: brackets are allowed
 * An IPv6 entry inside ::ffff:0:0/96 (prefix at least 96) is stored as the
 * IPv4 network it denotes.  Host bits set below the prefix ("10.1.2.3/8")
 * are an error, as in Postfix, because they usually hide a typo.
 *
 * Matching: an IPv4-mapped IPv6 client (::ffff:192.0.2.7) is matched as the
 * IPv4 address it carries, so it matches IPv4 entries and never IPv6 ones
 * (not even ::/0).  "0.0.0.0/0" matches every IPv4 client, "::/0" every
 * native IPv6 client.  An empty list matches nothing.
 *
 * Lookup cost: one binary search per distinct prefix length in the list.
 */
#ifndef SMG_NETLIST_H
#define SMG_NETLIST_H

#include <sys/socket.h>

#include "config.h"
#include "outcome.h"

/* Upper bound on the entries of one list. */
#define NETLIST_MAX_ENTRIES 65536

struct netlist;

/*
 * Builds a matcher from the words in l.  Returns NULL with
 * 'bad network entry "WORD": why' in eb if any entry is malformed; the caller
 * prefixes the config key (e.g. "TrustedNetworks: ").
 */
struct netlist *netlist_new(const struct strlist *l, struct errbuf *eb);
void netlist_free(struct netlist *);
/* Number of entries given (duplicates included). */
size_t netlist_count(const struct netlist *);

/*
 * 1 if the textual client address (as in Postfix's {client_addr}: "192.0.2.7",
 * "2001:db8::1", "::ffff:192.0.2.7"; brackets, an "IPv6:" prefix and a
 * "%zone" suffix are tolerated) lies in one of the networks, 0 if not or if
 * addr_text is NULL or not an address.
 */
int netlist_match(const struct netlist *, const char *addr_text);
/* Same for an AF_INET or AF_INET6 socket address; 0 for any other family or NULL. */
int netlist_match_sa(const struct netlist *, const struct sockaddr *sa);

#endif
