/*
 * policy: address parsing, InternalDomains, the group file, policy tables
 * and the outbound signing decision.  See policy.h for the syntax and the
 * precedence.  Everything is loaded once into open-addressing hash tables
 * that are never modified afterwards, so concurrent lookups need no lock
 * and cost a few hash probes, never a scan of the table.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy.h"
#include "xmalloc.h"

#define GROUP_NAME_MAX 64
#define NONE           SIZE_MAX

/* ---- string hash table ------------------------------------------------- */

/*
 * Maps NUL-terminated keys (owned by the caller, who keeps them alive as
 * long as the table) to size_t values.  Linear probing, kept at most half
 * full, grown only while loading.
 */
struct strtab {
	size_t cap; /* a power of two, or 0 */
	size_t n;
	const char **keys;
	size_t *vals;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
strtab_free(struct strtab *t)
{
	free(t->keys);
	free(t->vals);
	memset(t, 0, sizeof(*t));
}

/* Finds key's slot: the one holding it, or the empty one where it would go. */
static size_t
strtab_slot(const struct strtab *t, const char *key)
{
	size_t i = (size_t)hash_str(key) & (t->cap - 1);

	while (t->keys[i] != NULL && strcmp(t->keys[i], key) != 0)
		i = (i + 1) & (t->cap - 1);
	return i;
}

static void
strtab_grow(struct strtab *t)
{
	struct strtab nt;
	size_t i, s;

	nt.cap = t->cap == 0 ? 16 : t->cap * 2;
	nt.n = t->n;
	nt.keys = xcalloc(nt.cap, sizeof(*nt.keys));
	nt.vals = xcalloc(nt.cap, sizeof(*nt.vals));
	for (i = 0; i < t->cap; i++) {
		if (t->keys[i] == NULL)
			continue;
		s = strtab_slot(&nt, t->keys[i]);
		nt.keys[s] = t->keys[i];
		nt.vals[s] = t->vals[i];
	}
	strtab_free(t);
	*t = nt;
}

/* Inserts key unless present; returns the value now stored under key. */
static size_t
strtab_put(struct strtab *t, const char *key, size_t val)
{
	size_t s;

	if ((t->n + 1) * 2 > t->cap)
		strtab_grow(t);
	s = strtab_slot(t, key);
	if (t->keys[s] != NULL)
		return t->vals[s];
	t->keys[s] = key;
	t->vals[s] = val;
	t->n++;
	return val;
}

/* The value under key, or NONE. */
static size_t
strtab_get(const struct strtab *t, const char *key)
{
	size_t s;

	if (t->cap == 0)
		return NONE;
	s = strtab_slot(t, key);
	return t->keys[s] == NULL ? NONE : t->vals[s];
}

/* A growable list of owned strings, freed together. */
struct strpool {
	size_t n;
	char **v;
};

static char *
strpool_add(struct strpool *p, const char *s)
{
	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	return p->v[p->n++] = xstrdup(s);
}

static void
strpool_free(struct strpool *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* ---- addresses and domains --------------------------------------------- */

/*
 * Copies the domain in[0..len) lowercased, without one trailing dot, into
 * out (size POLICY_DOMAIN_MAX + 1); -1 if empty or too long.
 */
static int
domain_canon(const char *in, size_t len, char *out)
{
	size_t i;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > POLICY_DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[len] = '\0';
	return 0;
}

/* Checks a canonical domain written by the admin; NULL if fine, else why not. */
static const char *
domain_check(const char *d)
{
	size_t len = strlen(d), label = 0, i;

	if (len == 0)
		return "empty domain";
	if (d[0] == '[') {
		if (len < 3 || d[len - 1] != ']')
			return "malformed domain literal";
		for (i = 1; i < len - 1; i++)
			if (!isgraph((unsigned char)d[i]) || d[i] == '[' || d[i] == ']')
				return "malformed domain literal";
		return NULL;
	}
	for (i = 0; i <= len; i++) {
		if (d[i] == '.' || d[i] == '\0') {
			if (label == 0)
				return "empty label in domain";
			if (label > 63)
				return "domain label longer than 63 characters";
			label = 0;
		} else if (isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '_') {
			label++;
		} else {
			return "invalid character in domain";
		}
	}
	return NULL;
}

int
policy_addr_parse(const char *text, struct mailaddr *out)
{
	const char *s, *e, *p, *at = NULL;
	size_t n = 0;
	int inq = 0;

	out->null = 0;
	out->local[0] = out->domain[0] = out->full[0] = '\0';
	if (text == NULL)
		return -1;
	s = text;
	e = text + strlen(text);
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	if (s < e && *s == '<') {
		if (e[-1] != '>' || e - s < 2)
			return -1;
		s++;
		e--;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
	} else if (s < e && e[-1] == '>') {
		return -1;
	}
	if (s == e) {
		out->null = 1;
		return 0;
	}
	/* Source route "@a,@b:": drop everything up to the colon. */
	if (*s == '@') {
		for (p = s; p < e && *p != ':'; p++)
			;
		if (p == e)
			return -1;
		s = p + 1;
		if (s == e)
			return -1;
	}
	for (p = s; p < e; p++) {
		if (iscntrl((unsigned char)*p))
			return -1;
		if (*p == '\\' && inq) {
			if (++p == e || iscntrl((unsigned char)*p))
				return -1;
		} else if (*p == '"') {
			inq = !inq;
		} else if (*p == '@' && !inq) {
			at = p;
		}
	}
	if (inq)
		return -1;
	if (at == s)
		return -1;
	/* Local part: drop quote marks and the backslash of quoted pairs. */
	inq = 0;
	for (p = s; p < (at != NULL ? at : e); p++) {
		if (*p == '"') {
			inq = !inq;
			continue;
		}
		if (*p == '\\' && inq)
			p++;
		if (n >= POLICY_LOCAL_MAX)
			return -1;
		out->local[n++] = (char)tolower((unsigned char)*p);
	}
	out->local[n] = '\0';
	if (n == 0)
		return -1;
	if (at != NULL) {
		if (memchr(at + 1, '"', (size_t)(e - at - 1)) != NULL)
			return -1;
		if (domain_canon(at + 1, (size_t)(e - at - 1), out->domain) == -1)
			return -1;
		/* Both parts are bounded, so full always fits. */
		snprintf(out->full, sizeof(out->full), "%s@%s", out->local, out->domain);
	} else {
		memcpy(out->full, out->local, n + 1);
	}
	return 0;
}

/* ---- domain sets ------------------------------------------------------- */

struct policy_domains {
	struct strpool keys;
	struct strtab exact;  /* "example.org" */
	struct strtab suffix; /* ".example.org", stored without the dot */
};

struct policy_domains *
policy_domains_new(const struct strlist *l, struct errbuf *eb)
{
	struct policy_domains *ds = xcalloc(1, sizeof(*ds)), *ret = NULL;
	char d[POLICY_DOMAIN_MAX + 1];
	const char *w, *why;
	size_t i;
	int sub;

	if (l->n > POLICY_DOMAINS_MAX) {
		err_set(eb, "too many domains (%zu, limit %d)", l->n, POLICY_DOMAINS_MAX);
		goto out;
	}
	for (i = 0; i < l->n; i++) {
		w = l->v[i];
		sub = w[0] == '.';
		if (domain_canon(w + sub, strlen(w + sub), d) == -1) {
			err_set(eb, "bad domain \"%.300s\": empty or too long", w);
			goto out;
		}
		if ((why = domain_check(d)) != NULL) {
			err_set(eb, "bad domain \"%.300s\": %s", w, why);
			goto out;
		}
		strtab_put(sub ? &ds->suffix : &ds->exact, strpool_add(&ds->keys, d), i);
	}
	ret = ds;
	ds = NULL;
out:
	policy_domains_free(ds);
	return ret;
}

void
policy_domains_free(struct policy_domains *ds)
{
	if (ds == NULL)
		return;
	strtab_free(&ds->exact);
	strtab_free(&ds->suffix);
	strpool_free(&ds->keys);
	free(ds);
}

int
policy_domains_match(const struct policy_domains *ds, const char *domain)
{
	char d[POLICY_DOMAIN_MAX + 1];
	const char *p;

	if (ds == NULL || domain == NULL || domain_canon(domain, strlen(domain), d) == -1)
		return 0;
	if (strtab_get(&ds->exact, d) != NONE)
		return 1;
	for (p = strchr(d, '.'); p != NULL; p = strchr(p + 1, '.'))
		if (strtab_get(&ds->suffix, p + 1) != NONE)
			return 1;
	return 0;
}

/* ---- file reading, shared by the group file and tables ----------------- */

struct lineread {
	FILE *fp;
	const char *path;
	unsigned line;
	char buf[POLICY_LINE_MAX + 2];
};

/*
 * Reads the next line into lr->buf without its newline.  Returns 1, 0 at
 * end of file, or -1 with "FILE:LINE: why" in eb.
 */
static int
lineread_next(struct lineread *lr, struct errbuf *eb)
{
	size_t len;

	if (fgets(lr->buf, sizeof(lr->buf), lr->fp) == NULL) {
		if (ferror(lr->fp)) {
			err_set(eb, "%s:%u: read error: %s", lr->path, lr->line + 1,
			        strerror(errno));
			return -1;
		}
		return 0;
	}
	lr->line++;
	len = strlen(lr->buf);
	if (len > 0 && lr->buf[len - 1] == '\n')
		lr->buf[--len] = '\0';
	else if (!feof(lr->fp)) {
		err_set(eb, "%s:%u: line longer than %d bytes", lr->path, lr->line,
		        POLICY_LINE_MAX);
		return -1;
	}
	if (len > 0 && lr->buf[len - 1] == '\r')
		lr->buf[--len] = '\0';
	return 1;
}

/* 1 if the line is empty, all white space, or a comment. */
static int
line_is_blank(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0' || *s == '#';
}

/*
 * Splits the next token off *pp: skips separators (white space, plus ','
 * if commas is set), then takes text up to the next separator outside
 * double quotes.  The token is NUL-terminated in place.  NULL at the end.
 */
static char *
next_token(char **pp, int commas)
{
	char *p = *pp, *t;
	int inq = 0;

	while (*p != '\0' && (isspace((unsigned char)*p) || (commas && *p == ',')))
		p++;
	if (*p == '\0') {
		*pp = p;
		return NULL;
	}
	for (t = p; *p != '\0'; p++) {
		if (*p == '\\' && inq && p[1] != '\0')
			p++;
		else if (*p == '"')
			inq = !inq;
		else if (!inq && (isspace((unsigned char)*p) || (commas && *p == ',')))
			break;
	}
	if (*p != '\0')
		*p++ = '\0';
	*pp = p;
	return t;
}

/* Lowercases a group name in place; -1 if it is empty, too long or has odd characters. */
static int
group_name_canon(char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return -1;
		s[i] = (char)tolower((unsigned char)s[i]);
	}
	return i == 0 || i > GROUP_NAME_MAX ? -1 : 0;
}

/* ---- groups ------------------------------------------------------------ */

struct group {
	char *name;
	struct strpool members; /* "local@domain" and "@domain", in file order */
	struct strtab addrs;    /* "local@domain" */
	struct strtab domains;  /* "domain" (pointing past the '@') */
};

struct policy_groups {
	size_t n;
	struct group *g;
	struct strtab byname;
};

/* Parses one member token into key ("a@b" or "@b"); NULL if fine, else why not. */
static const char *
member_canon(const char *tok, char *key, size_t keysz)
{
	struct mailaddr a;
	char d[POLICY_DOMAIN_MAX + 1];
	const char *why;

	if (tok[0] == '@') {
		if (domain_canon(tok + 1, strlen(tok + 1), d) == -1)
			return "empty or overlong domain";
		if ((why = domain_check(d)) != NULL)
			return why;
		snprintf(key, keysz, "@%s", d);
		return NULL;
	}
	if (policy_addr_parse(tok, &a) == -1 || a.null)
		return "malformed address";
	if (a.domain[0] == '\0')
		return "address has no domain";
	/* XXX a quoted local part starting with '@' would read as an @domain member. */
	if (a.local[0] == '@')
		return "local part starts with '@'";
	if ((why = domain_check(a.domain)) != NULL)
		return why;
	if (strlcpy_checked(key, a.full, keysz) == -1)
		return "address too long";
	return NULL;
}

/* Adds the members on rest to group g; -1 with the error in eb. */
static int
group_add_members(struct group *g, char *rest, size_t *total, const struct lineread *lr,
                  struct errbuf *eb)
{
	char key[POLICY_ADDR_MAX + 2], *tok, *k;
	const char *why;

	while ((tok = next_token(&rest, 1)) != NULL) {
		if ((why = member_canon(tok, key, sizeof(key))) != NULL) {
			err_set(eb, "%s:%u: group %s: member \"%.300s\": %s", lr->path, lr->line,
			        g->name, tok, why);
			return -1;
		}
		if (g->members.n >= POLICY_MEMBERS_MAX || *total >= POLICY_GROUP_TOTAL) {
			err_set(
			    eb, "%s:%u: group %s: too many members (limit %d per group, %d in all)",
			    lr->path, lr->line, g->name, POLICY_MEMBERS_MAX, POLICY_GROUP_TOTAL);
			return -1;
		}
		if (strtab_get(key[0] == '@' ? &g->domains : &g->addrs,
		               key[0] == '@' ? key + 1 : key) != NONE)
			continue; /* listed twice: harmless */
		k = strpool_add(&g->members, key);
		if (k[0] == '@')
			strtab_put(&g->domains, k + 1, g->members.n - 1);
		else
			strtab_put(&g->addrs, k, g->members.n - 1);
		(*total)++;
	}
	return 0;
}

struct policy_groups *
policy_groups_load(const char *path, struct errbuf *eb)
{
	struct policy_groups *gs = xcalloc(1, sizeof(*gs)), *ret = NULL;
	struct lineread lr = {.path = path};
	struct group *g = NULL;
	char *colon = NULL, *name, *p;
	size_t total = 0;
	int r;

	if ((lr.fp = fopen(path, "r")) == NULL) {
		err_set(eb, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((r = lineread_next(&lr, eb)) == 1) {
		if (line_is_blank(lr.buf))
			continue;
		if (isspace((unsigned char)lr.buf[0])) {
			if (g == NULL) {
				err_set(eb, "%s:%u: continuation line without a group", path,
				        lr.line);
				goto out;
			}
		} else {
			if ((colon = strchr(lr.buf, ':')) == NULL) {
				err_set(eb, "%s:%u: expected \"groupname: member, ...\"", path,
				        lr.line);
				goto out;
			}
			*colon = '\0';
			name = lr.buf;
			for (p = colon; p > name && isspace((unsigned char)p[-1]); p--)
				p[-1] = '\0';
			if (group_name_canon(name) == -1) {
				err_set(eb, "%s:%u: bad group name \"%.100s\"", path, lr.line,
				        name);
				goto out;
			}
			if (strtab_get(&gs->byname, name) != NONE) {
				err_set(eb, "%s:%u: group %s defined twice", path, lr.line, name);
				goto out;
			}
			if (gs->n >= POLICY_GROUPS_MAX) {
				err_set(eb, "%s:%u: too many groups (limit %d)", path, lr.line,
				        POLICY_GROUPS_MAX);
				goto out;
			}
			gs->g = xreallocarray(gs->g, gs->n + 1, sizeof(*gs->g));
			g = &gs->g[gs->n];
			memset(g, 0, sizeof(*g));
			g->name = xstrdup(name);
			gs->n++;
			strtab_put(&gs->byname, g->name, gs->n - 1);
		}
		p = isspace((unsigned char)lr.buf[0]) ? lr.buf : colon + 1;
		if (group_add_members(g, p, &total, &lr, eb) == -1)
			goto out;
	}
	if (r == -1)
		goto out;
	ret = gs;
	gs = NULL;
out:
	if (lr.fp != NULL)
		fclose(lr.fp);
	policy_groups_free(gs);
	return ret;
}

void
policy_groups_free(struct policy_groups *gs)
{
	size_t i;

	if (gs == NULL)
		return;
	for (i = 0; i < gs->n; i++) {
		free(gs->g[i].name);
		strpool_free(&gs->g[i].members);
		strtab_free(&gs->g[i].addrs);
		strtab_free(&gs->g[i].domains);
	}
	free(gs->g);
	strtab_free(&gs->byname);
	free(gs);
}

size_t
policy_groups_count(const struct policy_groups *gs)
{
	return gs == NULL ? 0 : gs->n;
}

/* The group called name (canonical), or NULL. */
static const struct group *
groups_find(const struct policy_groups *gs, const char *name)
{
	size_t i;

	if (gs == NULL || (i = strtab_get(&gs->byname, name)) == NONE)
		return NULL;
	return &gs->g[i];
}

int
policy_groups_contains(const struct policy_groups *gs, const char *name,
                       const struct mailaddr *addr)
{
	char n[GROUP_NAME_MAX + 1];
	const struct group *g;

	if (addr == NULL || addr->null || addr->domain[0] == '\0' ||
	    strlcpy_checked(n, name, sizeof(n)) == -1 || group_name_canon(n) == -1 ||
	    (g = groups_find(gs, n)) == NULL)
		return 0;
	return strtab_get(&g->addrs, addr->full) != NONE ||
	       strtab_get(&g->domains, addr->domain) != NONE;
}

/* ---- policy tables ----------------------------------------------------- */

struct entry {
	char *pattern; /* canonical: "a@b", "@b", ".b", "group:n" or "*" */
	char *word;    /* the action word as the table wrote it */
	int action;
	unsigned line;
};

struct policy_table {
	char *path;
	size_t n;
	struct entry *e;
	struct strtab exact;   /* "local@domain" -> entry */
	struct strtab domain;  /* "domain" -> entry */
	struct strtab suffix;  /* "domain" (of ".domain") -> entry */
	struct strtab groups;  /* group name -> entry, for duplicates only */
	struct strtab gaddr;   /* member address -> earliest group: entry */
	struct strtab gdomain; /* member domain -> earliest group: entry */
	size_t star;           /* entry of "*", or NONE */
};

/* The caller's value for word, or -1 if it is not one of words. */
static int
action_find(const struct policy_word *words, const char *word)
{
	size_t i;

	for (i = 0; words[i].word != NULL; i++)
		if (strcasecmp(words[i].word, word) == 0)
			return words[i].value;
	return -1;
}

/*
 * Canonicalises a table pattern into buf and says which hash it belongs
 * in (*tab, *key pointing into buf); *tab is NULL for "*".  NULL if fine,
 * else why not.
 */
static const char *
pattern_canon(struct policy_table *t, const char *pat, char *buf, size_t bufsz, struct strtab **tab,
              const char **key)
{
	char d[POLICY_DOMAIN_MAX + 1];
	struct mailaddr a;
	const char *why, *s;
	int inq = 0, has_at = 0;

	if (strcmp(pat, "*") == 0) {
		snprintf(buf, bufsz, "*");
		*tab = NULL;
		*key = buf;
		return NULL;
	}
	if (strncasecmp(pat, "group:", 6) == 0) {
		if (strlcpy_checked(buf + 6, pat + 6, bufsz - 6) == -1 ||
		    group_name_canon(buf + 6) == -1)
			return "bad group name";
		memcpy(buf, "group:", 6);
		*tab = &t->groups;
		*key = buf + 6;
		return NULL;
	}
	for (s = pat; *s != '\0'; s++) {
		if (*s == '\\' && inq && s[1] != '\0')
			s++;
		else if (*s == '"')
			inq = !inq;
		else if (*s == '@' && !inq)
			has_at = 1;
	}
	if (pat[0] == '.' || pat[0] == '@' || !has_at) {
		s = pat[0] == '.' || pat[0] == '@' ? pat + 1 : pat;
		if (domain_canon(s, strlen(s), d) == -1)
			return "empty or overlong domain";
		if ((why = domain_check(d)) != NULL)
			return why;
		snprintf(buf, bufsz, "%c%s", pat[0] == '.' ? '.' : '@', d);
		*tab = pat[0] == '.' ? &t->suffix : &t->domain;
		*key = buf + 1;
		return NULL;
	}
	if (policy_addr_parse(pat, &a) == -1 || a.null || a.domain[0] == '\0')
		return "malformed address";
	if ((why = domain_check(a.domain)) != NULL)
		return why;
	if (strlcpy_checked(buf, a.full, bufsz) == -1)
		return "address too long";
	*tab = &t->exact;
	*key = buf;
	return NULL;
}

/* Records group g's members for entry idx unless an earlier group: entry has them. */
static void
table_add_group(struct policy_table *t, struct strpool *keys, const struct group *g, size_t idx)
{
	const char *m;
	size_t i;

	for (i = 0; i < g->members.n; i++) {
		m = g->members.v[i];
		if (m[0] == '@') {
			if (strtab_get(&t->gdomain, m + 1) == NONE)
				strtab_put(&t->gdomain, strpool_add(keys, m + 1), idx);
		} else if (strtab_get(&t->gaddr, m) == NONE) {
			strtab_put(&t->gaddr, strpool_add(keys, m), idx);
		}
	}
}

/* Owned strings of a table that are not entries: hash keys of group members. */
struct table_owned {
	struct policy_table t;
	struct strpool keys;
};

struct policy_table *
policy_table_load(const char *path, const struct policy_word *words,
                  const struct policy_groups *groups, struct errbuf *eb)
{
	struct table_owned *to = xcalloc(1, sizeof(*to));
	struct policy_table *t = &to->t, *ret = NULL;
	struct lineread lr = {.path = path};
	char canon[POLICY_ADDR_MAX + 16], *rest, *pat, *word;
	const struct group *g;
	struct strtab *tab;
	const char *key, *why;
	struct entry *e;
	size_t prev;
	int r, action;

	t->path = xstrdup(path);
	t->star = NONE;
	if ((lr.fp = fopen(path, "r")) == NULL) {
		err_set(eb, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((r = lineread_next(&lr, eb)) == 1) {
		if (line_is_blank(lr.buf))
			continue;
		rest = lr.buf;
		pat = next_token(&rest, 0);
		if ((word = next_token(&rest, 0)) == NULL) {
			err_set(eb, "%s:%u: %.300s: missing action", path, lr.line, pat);
			goto out;
		}
		if (next_token(&rest, 0) != NULL) {
			err_set(eb, "%s:%u: %.300s: text after the action", path, lr.line, pat);
			goto out;
		}
		if ((action = action_find(words, word)) < 0) {
			err_set(eb, "%s:%u: %.300s: unknown action \"%.100s\"", path, lr.line, pat,
			        word);
			goto out;
		}
		if ((why = pattern_canon(t, pat, canon, sizeof(canon), &tab, &key)) != NULL) {
			err_set(eb, "%s:%u: %.300s: %s", path, lr.line, pat, why);
			goto out;
		}
		g = NULL;
		if (tab == &t->groups) {
			if (groups == NULL) {
				err_set(eb, "%s:%u: %.300s: no GroupFile is configured", path,
				        lr.line, pat);
				goto out;
			}
			if ((g = groups_find(groups, key)) == NULL) {
				err_set(eb, "%s:%u: %.300s: unknown group", path, lr.line, pat);
				goto out;
			}
		}
		if (t->n >= POLICY_ENTRIES_MAX) {
			err_set(eb, "%s:%u: too many entries (limit %d)", path, lr.line,
			        POLICY_ENTRIES_MAX);
			goto out;
		}
		t->e = xreallocarray(t->e, t->n + 1, sizeof(*t->e));
		e = &t->e[t->n];
		e->pattern = xstrdup(canon);
		e->word = xstrdup(word);
		e->action = action;
		e->line = lr.line;
		t->n++;
		/* Keys point into e->pattern, which does not move when t->e grows. */
		key = e->pattern + (key - canon);
		if (tab == NULL)
			prev = t->star == NONE ? (t->star = t->n - 1) : t->star;
		else
			prev = strtab_put(tab, key, t->n - 1);
		if (prev != t->n - 1) {
			err_set(eb, "%s:%u: %.300s: duplicate pattern (first on line %u)", path,
			        lr.line, pat, t->e[prev].line);
			goto out;
		}
		if (g != NULL)
			table_add_group(t, &to->keys, g, t->n - 1);
	}
	if (r == -1)
		goto out;
	ret = t;
	t = NULL;
out:
	if (lr.fp != NULL)
		fclose(lr.fp);
	policy_table_free(t);
	return ret;
}

void
policy_table_free(struct policy_table *t)
{
	struct table_owned *to = (struct table_owned *)t;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->e[i].pattern);
		free(t->e[i].word);
	}
	free(t->e);
	free(t->path);
	strtab_free(&t->exact);
	strtab_free(&t->domain);
	strtab_free(&t->suffix);
	strtab_free(&t->groups);
	strtab_free(&t->gaddr);
	strtab_free(&t->gdomain);
	strpool_free(&to->keys);
	free(to);
}

size_t
policy_table_count(const struct policy_table *t)
{
	return t == NULL ? 0 : t->n;
}

const char *
policy_table_path(const struct policy_table *t)
{
	return t == NULL ? NULL : t->path;
}

/* The entry index that wins for addr, or NONE. */
static size_t
table_find(const struct policy_table *t, const struct mailaddr *a)
{
	size_t i, j;
	const char *p;

	if (a->null || a->domain[0] == '\0')
		return t->star;
	if ((i = strtab_get(&t->exact, a->full)) != NONE)
		return i;
	i = strtab_get(&t->gaddr, a->full);
	j = strtab_get(&t->gdomain, a->domain);
	if (i != NONE || j != NONE)
		return i < j ? i : j;
	if ((i = strtab_get(&t->domain, a->domain)) != NONE)
		return i;
	/* Left to right: the first suffix found is the longest. */
	for (p = strchr(a->domain, '.'); p != NULL; p = strchr(p + 1, '.'))
		if ((i = strtab_get(&t->suffix, p + 1)) != NONE)
			return i;
	return t->star;
}

int
policy_table_lookup(const struct policy_table *t, const struct mailaddr *addr,
                    struct policy_match *m)
{
	size_t i = t == NULL || addr == NULL ? NONE : table_find(t, addr);
	struct policy_match none = {POLICY_NOMATCH, NULL, NULL, 0};

	if (i != NONE) {
		none.action = t->e[i].action;
		none.pattern = t->e[i].pattern;
		none.word = t->e[i].word;
		none.line = t->e[i].line;
	}
	if (m != NULL)
		*m = none;
	return none.action;
}

/* ---- outbound signing decision ----------------------------------------- */

const struct policy_word policy_sign_words[] = {
    {"sign", POLICY_SIGN},
    {"nosign", POLICY_NOSIGN},
    {NULL, 0},
};

/* Sets the reason; XXX log text only, so truncation of a long pattern is accepted. */
static void reason_set(struct policy_sign_decision *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
reason_set(struct policy_sign_decision *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
}

void
policy_sign_decide(const struct policy_signcfg *cfg, const char *sender, const char *client_addr,
                   int authenticated, struct policy_sign_decision *out)
{
	struct mailaddr a;
	struct policy_match m;

	memset(out, 0, sizeof(*out));
	if (policy_addr_parse(sender, &a) == -1) {
		reason_set(out, "sender address malformed");
		return;
	}
	if (a.null) {
		reason_set(out, "null sender");
		return;
	}
	if (a.domain[0] == '\0') {
		reason_set(out, "sender address has no domain");
		return;
	}
	if (!policy_domains_match(cfg->internal, a.domain)) {
		reason_set(out, "sender domain not internal");
		return;
	}
	out->sender_internal = 1;
	if (!authenticated && !netlist_match(cfg->trusted, client_addr)) {
		reason_set(out, "client not trusted and not authenticated");
		return;
	}
	out->outbound = 1;
	if (policy_table_lookup(cfg->table, &a, &m) != POLICY_NOMATCH) {
		out->sign = m.action == POLICY_SIGN;
		reason_set(out, "SignPolicy %s for %s (line %u)", m.word, m.pattern, m.line);
		return;
	}
	out->sign = cfg->sign_by_default != 0;
	reason_set(out, "no SignPolicy entry; SignByDefault %s",
	           cfg->sign_by_default ? "yes" : "no");
}
