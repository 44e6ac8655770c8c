/*
 * connio: interposed accept(), read(), poll(), writev() and close() for
 * libmilter's connections (TCP_NODELAY, read-ahead, kept writes).
 */
#ifndef SMG_CONNIO_H
#define SMG_CONNIO_H

/* Read-ahead and kept writes for connections accepted from now on (default on). */
void connio_readahead(int on);
/* The send timeout of connections accepted from now on: libmilter's. */
void connio_timeout(int seconds);

#endif
