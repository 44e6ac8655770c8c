/*
 * fakemilter: libmilter's smfi_* calls, recorded instead of sent (see
 * fakemilter.h).  The argument checks follow libmilter 8.17 (smfi.c,
 * main.c): a call libmilter refuses returns MI_FAILURE here too, so the
 * daemon's error paths run as they would against the real library.
 */
#include "fakemilter.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "src/xmalloc.h"

void
fake_ctx_init(SMFICTX *ctx, unsigned long actions)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->actions = actions;
}

void
fake_ctx_clear_mods(SMFICTX *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nedits; i++) {
		free(ctx->edits[i].name);
		free(ctx->edits[i].value);
	}
	free(ctx->edits);
	ctx->edits = NULL;
	ctx->nedits = 0;
	free(ctx->body);
	ctx->body = NULL;
	ctx->bodylen = ctx->bodycap = ctx->nbodychunks = 0;
	ctx->refused = 0;
}

void
fake_macro_clear(SMFICTX *ctx, int from_stage)
{
	size_t i, o = 0;

	for (i = 0; i < ctx->nmac; i++) {
		if (ctx->mac[i].stage >= from_stage) {
			free(ctx->mac[i].name);
			free(ctx->mac[i].value);
		} else {
			ctx->mac[o++] = ctx->mac[i];
		}
	}
	ctx->nmac = o;
}

void
fake_ctx_release(SMFICTX *ctx)
{
	fake_ctx_clear_mods(ctx);
	fake_macro_clear(ctx, 0);
	free(ctx->reply);
	ctx->reply = NULL;
}

void
fake_macro_set(SMFICTX *ctx, int stage, const char *name, const char *value)
{
	size_t i;

	if (stage < 0 || stage >= FAKE_NSTAGES || *name == '\0')
		return;
	for (i = 0; i < ctx->nmac; i++)
		if (ctx->mac[i].stage == stage && strcmp(ctx->mac[i].name, name) == 0) {
			free(ctx->mac[i].value);
			ctx->mac[i].value = xstrdup(value);
			return;
		}
	if (ctx->nmac == FAKE_MAX_MACROS)
		return;
	ctx->mac[ctx->nmac].stage = stage;
	ctx->mac[ctx->nmac].name = xstrdup(name);
	ctx->mac[ctx->nmac].value = xstrdup(value);
	ctx->nmac++;
}

char *
fake_reply_take(SMFICTX *ctx, sfsistat verdict)
{
	char *r = ctx->reply;

	/* engine.c sendreply: a reply goes out only with a verdict of its class. */
	if (r == NULL || !((verdict == SMFIS_TEMPFAIL && r[0] == '4') ||
	                   (verdict == SMFIS_REJECT && r[0] == '5')))
		return NULL;
	ctx->reply = NULL;
	return r;
}

/* --- the libmilter API ------------------------------------------------------ */

void *
smfi_getpriv(SMFICTX *ctx)
{
	return ctx != NULL ? ctx->priv : NULL;
}

int
smfi_setpriv(SMFICTX *ctx, void *priv)
{
	if (ctx == NULL)
		return MI_FAILURE;
	ctx->priv = priv;
	return MI_SUCCESS;
}

/* smfi_getsymval: "x" also finds "{x}", "{x}" also finds "x"; the last slot first. */
char *
smfi_getsymval(SMFICTX *ctx, char *symname)
{
	char one[2] = "", braces[4] = "";
	size_t n, i;
	int st;

	if (ctx == NULL || symname == NULL || *symname == '\0')
		return NULL;
	n = strlen(symname);
	if (n == 3 && symname[0] == '{' && symname[2] == '}') {
		one[0] = symname[1];
		one[1] = '\0';
	}
	if (n == 1) {
		braces[0] = '{';
		braces[1] = symname[0];
		braces[2] = '}';
		braces[3] = '\0';
	}
	for (st = FAKE_NSTAGES - 1; st >= 0; st--)
		for (i = 0; i < ctx->nmac; i++) {
			const char *m = ctx->mac[i].name;

			if (ctx->mac[i].stage != st)
				continue;
			if (strcmp(m, symname) == 0 || (one[0] != '\0' && strcmp(m, one) == 0) ||
			    (braces[0] != '\0' && strcmp(m, braces) == 0))
				return ctx->mac[i].value;
		}
	return NULL;
}

/* myisenhsc(): "[245].d{1,3}.d{1,3}" then delim; the length or 0. */
static int
fake_isenhsc(const char *s, int delim)
{
	int l, h;

	if (s == NULL || !((*s == '2' || *s == '4' || *s == '5') && s[1] == '.'))
		return 0;
	h = 0;
	l = 2;
	while (h < 3 && isdigit((unsigned char)s[l + h]))
		++h;
	if (h == 0 || s[l + h] != '.')
		return 0;
	l += h + 1;
	h = 0;
	while (h < 3 && isdigit((unsigned char)s[l + h]))
		++h;
	if (h == 0 || s[l + h] != delim)
		return 0;
	return l + h;
}

int
smfi_setreply(SMFICTX *ctx, char *rcode, char *xcode, char *message)
{
	size_t len;

	if (rcode == NULL || ctx == NULL)
		goto bad;
	if (strlen(rcode) != 3 || (rcode[0] != '4' && rcode[0] != '5') ||
	    !isdigit((unsigned char)rcode[1]) || !isdigit((unsigned char)rcode[2]))
		goto bad;
	len = strlen(rcode) + 2;
	if (xcode != NULL) {
		if (!fake_isenhsc(xcode, '\0'))
			goto bad;
		len += strlen(xcode) + 1;
	}
	if (message != NULL) {
		if (strpbrk(message, "\r\n") != NULL || strlen(message) > FAKE_MAXREPLYLEN)
			goto bad;
		len += strlen(message) + 1;
	}
	free(ctx->reply);
	ctx->reply = xmalloc(len);
	strcpy(ctx->reply, rcode);
	strcat(ctx->reply, " ");
	if (xcode != NULL)
		strcat(ctx->reply, xcode);
	if (message != NULL) {
		if (xcode != NULL)
			strcat(ctx->reply, " ");
		strcat(ctx->reply, message);
	}
	ctx->replies_set++;
	return MI_SUCCESS;
bad:
	if (ctx != NULL)
		ctx->replies_bad++;
	return MI_FAILURE;
}

/* mi_sendok: the action was negotiated and we are at end of message. */
static int
fake_sendok(SMFICTX *ctx, unsigned long flag)
{
	if (ctx == NULL)
		return 0;
	if (flag != 0 && (ctx->actions & flag) == 0)
		return 0;
	return ctx->in_eom;
}

static int
fake_header(SMFICTX *ctx, char op, int index, const char *name, const char *value)
{
	struct fake_edit *e;

	if (name == NULL || *name == '\0' || value == NULL) {
		ctx->refused++;
		return MI_FAILURE;
	}
	ctx->edits = xreallocarray(ctx->edits, ctx->nedits + 1, sizeof(*ctx->edits));
	e = &ctx->edits[ctx->nedits++];
	e->op = op;
	e->index = index;
	e->name = xstrdup(name);
	e->value = xstrdup(value);
	return MI_SUCCESS;
}

int
smfi_addheader(SMFICTX *ctx, char *headerf, char *headerv)
{
	if (!fake_sendok(ctx, SMFIF_ADDHDRS)) {
		if (ctx != NULL)
			ctx->refused++;
		return MI_FAILURE;
	}
	return fake_header(ctx, 'a', -1, headerf, headerv);
}

int
smfi_insheader(SMFICTX *ctx, int hdridx, char *headerf, char *headerv)
{
	if (!fake_sendok(ctx, SMFIF_ADDHDRS) || hdridx < 0) {
		if (ctx != NULL)
			ctx->refused++;
		return MI_FAILURE;
	}
	return fake_header(ctx, 'i', hdridx, headerf, headerv);
}

int
smfi_chgheader(SMFICTX *ctx, char *headerf, int hdridx, char *headerv)
{
	if (headerf == NULL || *headerf == '\0' || hdridx < 0 || !fake_sendok(ctx, SMFIF_CHGHDRS)) {
		if (ctx != NULL)
			ctx->refused++;
		return MI_FAILURE;
	}
	return fake_header(ctx, 'c', hdridx, headerf, headerv != NULL ? headerv : "");
}

int
smfi_replacebody(SMFICTX *ctx, unsigned char *bodyp, int bodylen)
{
	size_t off = 0, left;

	if (bodylen < 0 || (bodyp == NULL && bodylen > 0) || !fake_sendok(ctx, SMFIF_CHGBODY)) {
		if (ctx != NULL)
			ctx->refused++;
		return MI_FAILURE;
	}
	left = (size_t)bodylen;
	if (ctx->body == NULL) {
		ctx->bodycap = left > 4096 ? left : 4096;
		ctx->body = xmalloc(ctx->bodycap);
	}
	/* libmilter sends SMFIR_REPLBODY packets of at most MILTER_CHUNK_SIZE. */
	do {
		size_t len = left >= FAKE_CHUNK ? FAKE_CHUNK : left;

		if (ctx->bodylen + len > ctx->bodycap) {
			while (ctx->bodylen + len > ctx->bodycap)
				ctx->bodycap *= 2;
			ctx->body = xreallocarray(ctx->body, ctx->bodycap, 1);
		}
		if (len > 0)
			memcpy(ctx->body + ctx->bodylen, bodyp + off, len);
		ctx->bodylen += len;
		ctx->nbodychunks++;
		off += len;
		left -= len;
	} while (left > 0);
	return MI_SUCCESS;
}
