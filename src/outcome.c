/*
 * outcome: error detail buffers.  OpenSSL's per-thread error queue is always
 * drained here, so a failure in one message never shows up in the next.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "outcome.h"

void
err_set(struct errbuf *eb, const char *fmt, ...)
{
	va_list ap;

	if (eb == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
	va_end(ap);
}

void
err_openssl(struct errbuf *eb, const char *what)
{
	char detail[256];
	unsigned long e;
	size_t off;
	int n;

	n = snprintf(eb != NULL ? eb->msg : detail, eb != NULL ? sizeof(eb->msg) : sizeof(detail),
	             "%s", what);
	off = n > 0 ? (size_t)n : 0;
	while ((e = ERR_get_error()) != 0) {
		if (eb == NULL || off + 3 >= sizeof(eb->msg))
			continue;
		ERR_error_string_n(e, detail, sizeof(detail));
		n = snprintf(eb->msg + off, sizeof(eb->msg) - off, ": %s", detail);
		if (n > 0)
			off += (size_t)n < sizeof(eb->msg) - off ? (size_t)n
			                                         : sizeof(eb->msg) - off - 1;
	}
}

void
err_openssl_clear(void)
{
	ERR_clear_error();
}

const char *
outcome_name(enum outcome o)
{
	switch (o) {
	case OUTCOME_OK:
		return "ok";
	case OUTCOME_PERM:
		return "permanent failure";
	case OUTCOME_TEMP:
		return "temporary failure";
	}
	return "unknown";
}
