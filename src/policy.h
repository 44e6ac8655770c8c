/*
 * policy: who is ours and what to do with their mail.  Four pieces, all
 * loaded once into immutable objects that any number of threads may query
 * at once without locking (lookups never write):
 *
 *   - address parsing (policy_addr_parse): envelope address to a canonical
 *     lowercase local@domain;
 *   - domain sets (InternalDomains);
 *   - the group file (GroupFile);
 *   - policy tables (SignPolicy now, EncryptPolicy and DecryptPolicy later),
 *     whose action words are chosen by the caller;
 *
 * plus policy_sign_decide(), the outbound signing decision the milter calls
 * once per message.
 *
 * Case: addresses and domains are compared case-insensitively, local parts
 * included (as Postfix's tables do).
 *
 * Domain patterns (InternalDomains, and the domain forms of tables):
 *	example.org	matches exactly example.org
 *	.example.org	matches every subdomain of example.org (a.example.org,
 *			b.a.example.org) but NOT example.org itself; list both to
 *			get both.  This is Postfix's convention when
 *			parent_domain_matches_subdomains does not name the table.
 *
 * Group file syntax (GroupFile):
 *	# comment
 *	staff: alice@example.org, bob@example.org,
 *	    @sales.example.org		(continuation: line starts with space/tab)
 * Members are separated by commas and/or white space; a member is a full
 * address or "@domain" (that exact domain, not its subdomains).  Group
 * names are letters, digits, '.', '_' and '-', case-insensitive; a name
 * defined twice is an error.  Errors read "FILE:LINE: why".
 *
 * Policy table syntax: "PATTERN ACTION" per line, '#' comment lines, blank
 * lines ignored, anything after ACTION is an error.  PATTERN is one of
 *	user@example.org	that address (a quoted local part may contain
 *				white space: "john smith"@example.org)
 *	@example.org		any address in exactly example.org
 *	example.org		same as @example.org
 *	.example.org		any address in a subdomain of example.org
 *	group:NAME		any address that is a member of group NAME
 *	*			any address, the null sender included
 * ACTION is one of the caller's words (case-insensitive).  Unknown action
 * words, unknown groups, a group: pattern without a group file, and
 * duplicate patterns (after canonicalisation, so "example.org" and
 * "@example.org" collide) are errors naming file, line and pattern.
 *
 * PRECEDENCE, first rule that matches wins:
 *   1. exact address;
 *   2. group membership: of the group: lines whose group contains the
 *      address (as an address member or through an @domain member), the
 *      one earliest in the table file;
 *   3. @domain (or bare domain) equal to the address's domain;
 *   4. .domain: the longest matching suffix;
 *   5. *.
 * No match returns POLICY_NOMATCH and the caller applies its default.
 *
 * Lookup cost: a constant number of hash probes plus one per label of the
 * domain (for the .domain rule); nothing scans the table per message.
 */
#ifndef SMG_POLICY_H
#define SMG_POLICY_H

#include <stddef.h>

#include "config.h"
#include "netlist.h"
#include "outcome.h"

/* Bounds on everything read from files or the envelope. */
#define POLICY_LOCAL_MAX   256 /* bytes of a local part, unquoted */
#define POLICY_DOMAIN_MAX  255 /* bytes of a domain */
#define POLICY_ADDR_MAX    (POLICY_LOCAL_MAX + 1 + POLICY_DOMAIN_MAX)
#define POLICY_LINE_MAX    4096    /* bytes of one physical file line */
#define POLICY_ENTRIES_MAX 1000000 /* lines of one policy table */
#define POLICY_GROUPS_MAX  10000   /* groups in a group file */
#define POLICY_MEMBERS_MAX 100000  /* members of one group */
#define POLICY_GROUP_TOTAL 1000000 /* members of all groups together */
#define POLICY_DOMAINS_MAX 100000  /* entries of a domain set */

/* ---- addresses --------------------------------------------------------- */

/* An envelope address in canonical form. */
struct mailaddr {
	int null;                           /* the null sender "<>" (or an empty string) */
	char local[POLICY_LOCAL_MAX + 1];   /* unquoted, lowercase */
	char domain[POLICY_DOMAIN_MAX + 1]; /* lowercase, no trailing dot; "" if none */
	char full[POLICY_ADDR_MAX + 1];     /* "local@domain", or just local if no domain */
};

/*
 * Parses an envelope address as the MTA passes it ("<user@example.org>",
 * "user@Example.ORG.", "<@relay1,@relay2:user@example.org>",
 * "<\"odd@local\"@example.org>", "<>").  Angle brackets, a source route, a
 * trailing dot in the domain and the quotes around a quoted local part are
 * removed; the domain is what follows the last '@' outside quotes.  Returns
 * 0, or -1 if the address is malformed (unbalanced quotes or brackets,
 * control characters, empty local part with a domain) or over the bounds.
 */
int policy_addr_parse(const char *text, struct mailaddr *out);

/* ---- domain sets (InternalDomains) ------------------------------------ */

struct policy_domains;

/*
 * Builds a set from words such as "example.org" and ".example.org".  NULL
 * with 'bad domain "WORD": why' in eb; the caller prefixes the config key.
 */
struct policy_domains *policy_domains_new(const struct strlist *l, struct errbuf *eb);
void policy_domains_free(struct policy_domains *);
/* 1 if domain (any case, trailing dot allowed) is in the set. */
int policy_domains_match(const struct policy_domains *, const char *domain);

/* ---- groups (GroupFile) ------------------------------------------------ */

struct policy_groups;

/* Reads a group file; NULL with "FILE:LINE: why" (or "FILE: why") in eb. */
struct policy_groups *policy_groups_load(const char *path, struct errbuf *eb);
void policy_groups_free(struct policy_groups *);
size_t policy_groups_count(const struct policy_groups *);
/* 1 if the address (canonical form) is a member of group name; 0 if not or no such group. */
int policy_groups_contains(const struct policy_groups *, const char *name,
                           const struct mailaddr *addr);

/* ---- policy tables ----------------------------------------------------- */

/* One allowed action word and its value (>= 0); arrays end with {NULL, 0}. */
struct policy_word {
	const char *word;
	int value;
};

#define POLICY_NOMATCH (-1)

struct policy_table;

/* What matched, for the log.  The strings belong to the table. */
struct policy_match {
	int action;          /* the action value, or POLICY_NOMATCH */
	const char *pattern; /* the pattern as canonicalised ("@example.org"), or NULL */
	const char *word;    /* the action word as written in the table, or NULL */
	unsigned line;       /* line in the table file, 0 if no match */
};

/*
 * Loads a table whose actions are the words in 'words'.  groups may be NULL
 * if there is no group file (then group: patterns are errors); the table
 * copies what it needs, so groups may be freed afterwards.  NULL with
 * "FILE:LINE: why" in eb.
 */
struct policy_table *policy_table_load(const char *path, const struct policy_word *words,
                                       const struct policy_groups *groups, struct errbuf *eb);
void policy_table_free(struct policy_table *);
size_t policy_table_count(const struct policy_table *);
const char *policy_table_path(const struct policy_table *);

/*
 * Looks up a parsed address by the precedence above; returns the action
 * value or POLICY_NOMATCH, and fills m if it is not NULL.
 */
int policy_table_lookup(const struct policy_table *, const struct mailaddr *addr,
                        struct policy_match *m);

/* ---- outbound signing decision ---------------------------------------- */

enum { POLICY_NOSIGN = 0, POLICY_SIGN = 1 };
/* The SignPolicy action words: "sign" and "nosign". */
extern const struct policy_word policy_sign_words[];

/* The config-derived objects; any pointer may be NULL (empty set / no table). */
struct policy_signcfg {
	const struct policy_domains *internal; /* InternalDomains */
	const struct netlist *trusted;         /* TrustedNetworks */
	const struct policy_table *table;      /* SignPolicy, loaded with policy_sign_words */
	int sign_by_default;                   /* SignByDefault */
};

#define POLICY_REASON_MAX 256

struct policy_sign_decision {
	int sender_internal;            /* the sender's domain is in InternalDomains */
	int outbound;                   /* ...and the client is trusted or authenticated */
	int sign;                       /* outbound and policy says sign */
	char reason[POLICY_REASON_MAX]; /* why, for the log (may be truncated) */
};

/*
 * Decides whether a message is outbound mail from one of our users and
 * whether to sign it.  sender is the envelope sender as the MTA gives it,
 * client_addr the client's address text (NULL if unknown), authenticated
 * nonzero if the client authenticated (SASL or a trusted certificate).
 * Never fails: a malformed sender is simply not outbound.
 */
void policy_sign_decide(const struct policy_signcfg *cfg, const char *sender,
                        const char *client_addr, int authenticated,
                        struct policy_sign_decision *out);

#endif
