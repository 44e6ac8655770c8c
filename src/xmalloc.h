/*
 * xmalloc: allocation wrappers.  Allocation failure is fatal in exactly
 * one place, so callers never carry an out-of-memory path of their own.
 * Sizes are checked for overflow before multiplying.
 */
#ifndef SMG_XMALLOC_H
#define SMG_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
/* Formats into a new string; never NULL. */
char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into dst of size dstsz; returns -1 (and copies nothing useful) on truncation. */
int strlcpy_checked(char *dst, const char *src, size_t dstsz);

#endif
