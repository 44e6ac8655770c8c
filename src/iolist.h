/*
 * iolist: an output body described as a list of byte ranges.  A segment
 * either points into memory owned by someone else (the message buffer,
 * which must outlive the list) or owns a small piece of new bytes
 * (boundaries, headers, base64 of a signature).  The milter writes the
 * segments to the MTA in order, so the message is never assembled twice.
 */
#ifndef SMG_IOLIST_H
#define SMG_IOLIST_H

#include <stddef.h>

struct iolist;

struct iolist *iolist_new(void);
void iolist_free(struct iolist *);

/* Appends a reference to n bytes at p; p must outlive the list. */
void iolist_add_ref(struct iolist *, const void *p, size_t n);
/* Appends a private copy of n bytes at p. */
void iolist_add_copy(struct iolist *, const void *p, size_t n);
/* Appends a string's bytes (a private copy). */
void iolist_add_str(struct iolist *, const char *s);
/* Appends p, taking ownership: the list frees it with free(3). */
void iolist_add_owned(struct iolist *, void *p, size_t n);

size_t iolist_count(const struct iolist *);
/* Segment i as pointer and length. */
const void *iolist_get(const struct iolist *, size_t i, size_t *len);
/* Sum of all segment lengths. */
size_t iolist_total(const struct iolist *);
/* Copies everything into one new buffer (for tests and small outputs); *len gets the size. */
unsigned char *iolist_flatten(const struct iolist *, size_t *len);

#endif
