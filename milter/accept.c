/*
 * accept: TCP_NODELAY on the milter's TCP connections.
 *
 * libmilter answers end of message with several small packets (header
 * changes, body chunks, the final reply) and does not turn off Nagle's
 * algorithm, so on an inet socket each message waits for the MTA's delayed
 * ACK (about 40 ms) instead of the milter's work.  libmilter's listener is
 * the only caller of accept() in this program; this definition comes first
 * in the dynamic linker's lookup, so its sockets get TCP_NODELAY.
 */
#include "autoconf.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int
accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int c, one = 1;

	if ((c = accept4(fd, addr, addrlen, 0)) == -1)
		return -1;
	if (getsockname(c, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		(void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}
