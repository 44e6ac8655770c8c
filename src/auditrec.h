/*
 * auditrec: the audit record format shared by the writer (src/audit.c) and
 * the smimegw-audit tool: a growable JSON line builder whose string escaper
 * always yields valid UTF-8 JSON whatever bytes a hostile header holds, the
 * record hash of the chain, and a small parser for flat record objects.
 * See contrib/audit-format.md for the field reference.
 */
#ifndef SMG_AUDITREC_H
#define SMG_AUDITREC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Hex SHA-256 length plus NUL. */
#define AUDIT_HASH_HEX 65
/* The "prev" value of the very first record of a chain. */
#define AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
/* Longest value written for any one string field (input bytes). */
#define AUDIT_FIELD_MAX 1024
/* Most recipients listed in one record; rcpt_count has the true number. */
#define AUDIT_RCPT_MAX 100
/* Longest record line the tool accepts. */
#define AUDIT_LINE_MAX (1024 * 1024)

struct jbuf {
	char *p;
	size_t len, cap;
};

void jbuf_init(struct jbuf *);
void jbuf_free(struct jbuf *);
void jbuf_add(struct jbuf *, const void *, size_t);
void jbuf_addstr(struct jbuf *, const char *);
/* Appends s (at most max input bytes) as a quoted JSON string: quotes,
 * backslashes and control bytes escaped, invalid UTF-8 replaced by U+FFFD. */
void jbuf_quote(struct jbuf *, const char *s, size_t len, size_t max);
/* Appends ,"key":"val" (no comma at the start of the buffer or after '{');
 * nothing when val is NULL. */
void jbuf_field_str(struct jbuf *, const char *key, const char *val);
void jbuf_field_uint(struct jbuf *, const char *key, uint64_t val);
/* Appends ,"key":["a","b"] listing at most max of n strings. */
void jbuf_field_strv(struct jbuf *, const char *key, const char *const *v, size_t n, size_t max);

/* Formats t (UTC) as RFC 3339 with milliseconds: 2026-11-29T16:50:07.123Z. */
void audit_time_format(const struct timespec *t, char out[32]);
/* SHA-256 of the record line (without its newline) as lowercase hex. */
void audit_hash(const char *line, size_t len, char out[AUDIT_HASH_HEX]);

/* A parsed flat record: string, number/literal and string-array values. */
#define JREC_MAXFIELDS 64
struct jfield {
	const char *key;
	const char *val; /* arrays: the items, each NUL terminated, back to back */
	size_t nitems;   /* arrays only */
	char type;       /* 's' string, 'n' number or literal, 'a' array of strings */
};
struct jrec {
	struct jfield f[JREC_MAXFIELDS];
	size_t n;
	char *arena;
	size_t arenasz;
};

void jrec_init(struct jrec *);
void jrec_free(struct jrec *);
/* Parses one line; 0 on success, -1 if it is not a flat JSON object. */
int jrec_parse(struct jrec *, const char *line, size_t len);
/* The field named key, or NULL. */
const struct jfield *jrec_field(const struct jrec *, const char *key);
/* The string or number value of key, or NULL (arrays: the first item). */
const char *jrec_get(const struct jrec *, const char *key);

#endif
