/*
 * audit_tool: pieces shared by the smimegw-audit subcommands: a streaming
 * line reader (large buffer, never the whole file) and the HTML report.
 */
#ifndef SMG_AUDIT_TOOL_H
#define SMG_AUDIT_TOOL_H

#include <stddef.h>

struct lreader;

/* Opens path for line reading ("-" is stdin); NULL with errno on failure. */
struct lreader *lreader_open(const char *path);
void lreader_free(struct lreader *);
/*
 * Returns the next line (without its newline; not NUL terminated) in
 * line and len, 1 on success, 0 at EOF, -1 on a read error or a line over
 * AUDIT_LINE_MAX.  *complete is 0 for a last line without its newline.
 */
int lreader_next(struct lreader *, const char **line, size_t *len, int *complete);

/* Writes the HTML report over files to out; 0 or -1 (message on stderr).
 * Certificates expiring within expiry_days of now are listed. */
int audit_report(char **files, int nfiles, const char *out, int expiry_days);

#endif
