/*
 * nullmilter: the reference body-rewriting milter for benchmarks.  It
 * buffers each message body and at end of message hands the very same bytes
 * back with smfi_replacebody, doing no crypto at all, so its throughput is
 * the ceiling for any milter that rewrites bodies (smimegw included).
 *
 * usage: nullmilter -p SOCKETSPEC [-f] [-t TIMEOUT_S]
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "src/xmalloc.h"

/* Largest body buffered; bigger ones get a tempfail. */
#define NULL_MAX_BODY (512u * 1024 * 1024)

struct nullmsg {
	unsigned char *body;
	size_t len, cap;
	int toobig;
};

static struct nullmsg *
msg_get(SMFICTX *ctx)
{
	struct nullmsg *m = smfi_getpriv(ctx);

	if (m == NULL) {
		m = xcalloc(1, sizeof(*m));
		smfi_setpriv(ctx, m);
	}
	return m;
}

static void
msg_reset(SMFICTX *ctx)
{
	struct nullmsg *m = smfi_getpriv(ctx);

	if (m != NULL) {
		m->len = 0;
		m->toobig = 0;
	}
}

static sfsistat
null_envfrom(SMFICTX *ctx, char **argv)
{
	(void)argv;
	msg_get(ctx);
	msg_reset(ctx);
	return SMFIS_CONTINUE;
}

static sfsistat
null_body(SMFICTX *ctx, unsigned char *p, size_t n)
{
	struct nullmsg *m = msg_get(ctx);

	if (m->toobig || n > NULL_MAX_BODY - m->len) {
		m->toobig = 1;
		return SMFIS_CONTINUE;
	}
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap : 65536;

		while (cap < m->len + n)
			cap *= 2;
		m->body = xreallocarray(m->body, cap, 1);
		m->cap = cap;
	}
	memcpy(m->body + m->len, p, n);
	m->len += n;
	return SMFIS_CONTINUE;
}

static sfsistat
null_eom(SMFICTX *ctx)
{
	struct nullmsg *m = msg_get(ctx);
	size_t off, n;

	if (m->toobig) {
		msg_reset(ctx);
		return SMFIS_TEMPFAIL;
	}
	for (off = 0; off < m->len; off += n) {
		n = m->len - off > 65535 ? 65535 : m->len - off;
		if (smfi_replacebody(ctx, m->body + off, (int)n) != MI_SUCCESS) {
			msg_reset(ctx);
			return SMFIS_TEMPFAIL;
		}
	}
	msg_reset(ctx);
	return SMFIS_CONTINUE;
}

static sfsistat
null_abort(SMFICTX *ctx)
{
	msg_reset(ctx);
	return SMFIS_CONTINUE;
}

static sfsistat
null_close(SMFICTX *ctx)
{
	struct nullmsg *m = smfi_getpriv(ctx);

	if (m != NULL) {
		free(m->body);
		free(m);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc null_desc = {
    .xxfi_name = "nullmilter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_CHGBODY,
    .xxfi_envfrom = null_envfrom,
    .xxfi_body = null_body,
    .xxfi_eom = null_eom,
    .xxfi_abort = null_abort,
    .xxfi_close = null_close,
};

int
main(int argc, char **argv)
{
	const char *spec = NULL;
	int c, foreground = 0, timeout = 600;

	while ((c = getopt(argc, argv, "fp:t:")) != -1) {
		switch (c) {
		case 'f':
			foreground = 1;
			break;
		case 'p':
			spec = optarg;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (spec == NULL || optind != argc)
		goto usage;
	if (smfi_setconn((char *)spec) != MI_SUCCESS || smfi_settimeout(timeout) != MI_SUCCESS ||
	    smfi_register(null_desc) != MI_SUCCESS || smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: cannot listen on %s\n", spec);
		return 1;
	}
	if (!foreground && daemon(0, 0) < 0) {
		perror("nullmilter: daemon");
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
usage:
	fprintf(stderr, "usage: nullmilter -p SOCKETSPEC [-f] [-t TIMEOUT_S]\n");
	return 64;
}
