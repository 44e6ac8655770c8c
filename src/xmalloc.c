/*
 * xmalloc: the single out-of-memory policy of smimegw.  A mail gateway
 * that cannot allocate cannot make progress safely; it logs and aborts,
 * and the MTA's milter_default_action decides the fate of in-flight mail.
 */
#include "autoconf.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

static void
xmalloc_die(size_t n)
{
	log_crit("out of memory allocating %zu bytes", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		xmalloc_die(n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if ((p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size)) == NULL)
		xmalloc_die(nmemb * size);
	return p;
}

void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		xmalloc_die(SIZE_MAX);
	if ((p = realloc(ptr, nmemb * size == 0 ? 1 : nmemb * size)) == NULL)
		xmalloc_die(nmemb * size);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;
	size_t len = strnlen(s, n);

	p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		xmalloc_die(strlen(fmt));
	return p;
}

void
xmalloc_tune(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
}

int
strlcpy_checked(char *dst, const char *src, size_t dstsz)
{
	size_t n = strlen(src);

	if (dstsz == 0)
		return -1;
	if (n >= dstsz) {
		dst[0] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}
