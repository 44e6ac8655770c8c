/*
 * authres: builds Authentication-Results (RFC 8601, method smime per RFC
 * 7281) and the X-SMIMEGW-Result companion, and strips spoofed incoming
 * copies.  See authres.h for the exact format.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "authres.h"
#include "xmalloc.h"

#define AUTHRES_MAX_DN 256 /* characters of a DN put into a header */

/* A growing string. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->cap - b->len <= n) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		return;
	sb_add(b, s);
	free(s);
}

/* s as an RFC 5322 quoted-string (at most max characters of s, no CR/LF). */
static void
sb_quoted(struct sbuf *b, const char *s, size_t max)
{
	size_t i;

	sb_add(b, "\"");
	for (i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			sb_addn(b, "\\", 1);
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		sb_addn(b, (const char *)&c, 1);
	}
	sb_add(b, "\"");
}

/* Whether s is a token (RFC 2045) or an addr-spec made of dot-atoms. */
static int
plain_value(const char *s, int allow_at)
{
	size_t i;

	if (*s == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("()<>,;:\\\"/[]?=", c) != NULL ||
		    (c == '@' && !allow_at))
			return 0;
	}
	return 1;
}

static void
sb_value(struct sbuf *b, const char *s, int allow_at)
{
	if (plain_value(s, allow_at))
		sb_add(b, s);
	else
		sb_quoted(b, s, AUTHRES_MAX_DN);
}

char *
authres_build(const char *authserv_id, const struct verify_result *vr)
{
	struct sbuf b = {NULL, 0, 0};
	size_t i;

	sb_value(&b, authserv_id, 0);
	if (vr == NULL || vr->nlayers == 0) {
		sb_add(&b, "; smime=none");
		return b.p;
	}
	for (i = 0; i < vr->nlayers; i++) {
		const struct verify_layer *L = &vr->layer[i];
		const char *v = verdict_name(L->verdict), *r = reason_name(L->reason);

		/* RFC 8601: every resinfo starts with ";" */
		sb_printf(&b, "; smime=%s", v != NULL ? v : "permerror");
		if (L->verdict != VERDICT_PASS && r != NULL)
			sb_printf(&b, " (%s)", r); /* reason names are safe comment text */
		if (L->email[0] != '\0') {
			sb_add(&b, " smime.smime-identifier=");
			sb_value(&b, L->email, 1);
		}
		if (L->serial != NULL) {
			sb_add(&b, " smime.smime-serial=");
			sb_value(&b, L->serial, 0);
		}
		if (L->issuer != NULL) {
			sb_add(&b, " smime.smime-issuer=");
			sb_quoted(&b, L->issuer, AUTHRES_MAX_DN);
		}
	}
	return b.p;
}

char *
authres_companion(const struct verify_result *vr, const struct decrypt_result *dr)
{
	struct sbuf b = {NULL, 0, 0};
	const char *sep = "";

	if (dr != NULL && dr->status != DECRYPT_NOT_ENCRYPTED) {
		sb_printf(&b, "decrypt=%s", dr->status == DECRYPT_OK ? "pass" : "fail");
		if (dr->status == DECRYPT_OK) {
			sb_add(&b, "; decrypt-user=");
			sb_value(&b, dr->user, 1);
			sb_printf(&b, "; decrypt-key=%s", dr->fingerprint);
			sb_add(&b, "; decrypt-cipher=");
			sb_value(&b, dr->content_alg, 0);
			sb_add(&b, "; decrypt-keyalg=");
			sb_value(&b, dr->key_alg, 0);
		} else {
			sb_printf(&b, "; decrypt-reason=%s",
			          reason_name(dr->reason) ? reason_name(dr->reason) : "internal");
		}
		sep = "; ";
	}
	if (vr == NULL || vr->nlayers == 0) {
		sb_printf(&b, "%sverify=none", sep);
		return b.p;
	}
	{
		const struct verify_layer *L = &vr->layer[0];
		const char *r = reason_name(L->reason);

		sb_printf(&b, "%sverify=%s; reason=%s; layers=%zu", sep,
		          verdict_name(L->verdict) ? verdict_name(L->verdict) : "permerror",
		          r != NULL ? r : "internal", vr->nlayers);
		if (L->subject != NULL) {
			sb_add(&b, "; signer=");
			sb_quoted(&b, L->subject, AUTHRES_MAX_DN);
			sb_printf(&b, "; signer-fp=%s", L->fingerprint);
		}
		if (L->signature == CHECK_PASS)
			sb_printf(&b, "; chain=%s", trust_status_name(L->chain_now));
		if (L->signing_time != (time_t)-1) {
			struct tm tm;
			char t[32];

			gmtime_r(&L->signing_time, &tm);
			strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
			sb_printf(&b, "; signing-time=%s", t);
		}
	}
	return b.p;
}

/* Skips CFWS (blanks, line breaks, nested comments with quoted pairs). */
static size_t
skip_cfws(const char *v, size_t n, size_t i)
{
	int depth = 0;

	while (i < n) {
		if (depth > 0) {
			if (v[i] == '\\' && i + 1 < n)
				i++;
			else if (v[i] == '(')
				depth++;
			else if (v[i] == ')')
				depth--;
			i++;
		} else if (v[i] == '(') {
			depth = 1;
			i++;
		} else if (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n')
			i++;
		else
			break;
	}
	return i;
}

int
authres_parse_id(const char *v, size_t n, char *out, size_t outsz)
{
	size_t i = skip_cfws(v, n, 0), o = 0;

	if (i == n || outsz == 0)
		return -1;
	if (v[i] == '"') {
		for (i++; i < n && v[i] != '"'; i++) {
			if (v[i] == '\\' && i + 1 < n)
				i++;
			if (o + 1 >= outsz)
				return -1;
			out[o++] = v[i];
		}
		if (i == n)
			return -1;
	} else {
		for (; i < n; i++) {
			unsigned char c = (unsigned char)v[i];
			if (c <= 0x20 || c >= 0x7f || strchr("()<>,;:\\\"/[]?=", c) != NULL)
				break;
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

/* Appends deletes for every field named name that match() approves, highest first. */
static size_t
strip_name(const struct msgbuf *mb, const char *name, const char *id, struct rewrite *rw)
{
	const unsigned char *d = msgbuf_data(mb);
	const struct msgbuf_hdr *h;
	size_t from = 0, count = 0, ndel = 0, i;
	unsigned *del = NULL;
	char got[AUTHRES_MAX_ID + 1];

	while ((h = msgbuf_header_find(mb, name, &from)) != NULL) {
		count++;
		if (id != NULL && (authres_parse_id((const char *)d + h->value.off, h->value.len,
		                                    got, sizeof(got)) != 0 ||
		                   strcasecmp(got, id) != 0))
			continue;
		del = xreallocarray(del, ndel + 1, sizeof(*del));
		del[ndel++] = (unsigned)count;
	}
	for (i = ndel; i-- > 0;)
		rewrite_add(rw, HDR_DELETE, name, del[i], NULL);
	free(del);
	return ndel;
}

size_t
authres_strip(const struct msgbuf *mb, const char *authserv_id, struct rewrite *rw)
{
	return strip_name(mb, AUTHRES_HEADER, authserv_id, rw) +
	       strip_name(mb, AUTHRES_COMPANION, NULL, rw);
}
