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

/*
 * Keeps buffers of up to 64 MB on the heap and the freed memory mapped:
 * a gateway allocates and frees a message-sized buffer per message, and
 * fresh mmap()ed pages cost a page fault and a zeroed page each time.
 */
void xmalloc_tune(void);

/* Copies src into dst of size dstsz; returns -1 (and copies nothing useful) on truncation. */
int strlcpy_checked(char *dst, const char *src, size_t dstsz);

#endif
