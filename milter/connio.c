/*
 * connio: how libmilter's connections meet the kernel.  libmilter is the
 * only caller of accept(), and the only user of the sockets it accepts;
 * the definitions here come first in the dynamic linker's lookup, so its
 * calls land here.  Descriptors not accepted here pass straight through.
 *
 * accept(): TCP_NODELAY on inet sockets (libmilter answers with several
 * small packets and does not turn off Nagle's algorithm, so each message
 * would wait for the MTA's delayed ACK, about 40 ms), and a send timeout,
 * because writes below no longer wait in poll(2) first.
 *
 * read(), poll(): read-ahead.  libmilter reads every packet with poll(2) +
 * read(2) for its 5-byte header and again for its payload, so a message
 * with twenty header fields costs some eighty system calls before its
 * body.  The MTA sends those packets back to back, so each connection gets
 * a buffer filled by one read(2) and drained by the reads that follow;
 * poll() returns at once while it holds bytes.  Reads at least as large as
 * the buffer bypass it, so body chunks are not copied twice.
 *
 * writev(): the changes to a message (header edits, body chunks) are not
 * answered by the MTA, so small ones are kept and go out with the next
 * packet that is, in one writev(2): the final reply of a message carries
 * its edits.  Every other packet is written at once, all of it.
 *
 * close(): forgets the connection.
 */
#include "autoconf.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libmilter/mfdef.h>

#include "connio.h"

#define CONNIO_MAXFD  65536 /* descriptors above are not buffered */
#define CONNIO_RBUF   16384
#define CONNIO_WBUF   8192
#define CONNIO_KEEP   4096 /* larger packets are gathered, not copied */
#define CONNIO_MAXIOV 16

/* glibc's own entry points, so the definitions below can call through. */
extern int __close(int);
extern int __poll(struct pollfd *, nfds_t, int);
extern ssize_t __read(int, void *, size_t);

struct connio_buf {
	size_t roff, rlen, wlen;
	unsigned char rbuf[CONNIO_RBUF];
	unsigned char wbuf[CONNIO_WBUF];
};

/* One slot per descriptor: set by the listener, used and cleared by the one
 * thread that serves the connection. */
static _Atomic(struct connio_buf *) connio_slots[CONNIO_MAXFD];
static atomic_int connio_off;
static atomic_int connio_sndtimeo = 7210; /* libmilter's default timeout */

void
connio_readahead(int on)
{
	atomic_store(&connio_off, !on);
}

void
connio_timeout(int seconds)
{
	atomic_store(&connio_sndtimeo, seconds > 0 ? seconds : 7210);
}

int
accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct timeval tv = {0, 0};
	struct connio_buf *b;
	int c, one = 1;

	if ((c = accept4(fd, addr, addrlen, SOCK_CLOEXEC)) == -1)
		return -1;
	if (getsockname(c, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		(void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c >= CONNIO_MAXFD || atomic_load(&connio_off))
		return c;
	tv.tv_sec = atomic_load(&connio_sndtimeo);
	if (setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    (b = malloc(sizeof(*b))) == NULL)
		return c; /* unbuffered, as libmilter expects anyway */
	b->roff = b->rlen = b->wlen = 0;
	free(atomic_exchange(&connio_slots[c], b));
	return c;
}

static struct connio_buf *
connio_get(int fd)
{
	if (fd < 0 || fd >= CONNIO_MAXFD)
		return NULL;
	return atomic_load_explicit(&connio_slots[fd], memory_order_acquire);
}

ssize_t
read(int fd, void *buf, size_t n)
{
	struct connio_buf *b = connio_get(fd);
	ssize_t r;

	if (b == NULL || n == 0)
		return __read(fd, buf, n);
	if (b->rlen == b->roff) {
		if (n >= sizeof(b->rbuf))
			return __read(fd, buf, n);
		if ((r = __read(fd, b->rbuf, sizeof(b->rbuf))) <= 0)
			return r;
		b->roff = 0;
		b->rlen = (size_t)r;
	}
	if (n > b->rlen - b->roff)
		n = b->rlen - b->roff;
	memcpy(buf, b->rbuf + b->roff, n);
	b->roff += n;
	return (ssize_t)n;
}

/* glibc declares poll()'s array write-only, which it is not. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct connio_buf *b;

	if (nfds == 1 && (b = connio_get(fds[0].fd)) != NULL) {
		if ((fds[0].events & POLLIN) && b->rlen > b->roff) {
			fds[0].revents = POLLIN;
			return 1;
		}
		/* Writes are bounded by SO_SNDTIMEO (see writev). */
		if ((fds[0].events & (POLLIN | POLLOUT)) == POLLOUT) {
			fds[0].revents = POLLOUT;
			return 1;
		}
	}
	return __poll(fds, nfds, timeout);
}
#pragma GCC diagnostic pop

/* A change to the message, which the MTA takes without answering. */
static int
connio_unanswered(const struct iovec *iov, int n)
{
	if (n < 1 || iov[0].iov_len < MILTER_LEN_BYTES + 1)
		return 0;
	switch (((const unsigned char *)iov[0].iov_base)[MILTER_LEN_BYTES]) {
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_REPLBODY:
	case SMFIR_CHGFROM:
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
	case SMFIR_QUARANTINE:
		return 1;
	default:
		return 0;
	}
}

/* Sends all of iov (n entries, total bytes); -1 on error or send timeout. */
static int
connio_send_all(int fd, struct iovec *iov, int n, size_t total)
{
	struct msghdr mh;
	ssize_t w;

	while (total > 0) {
		while (n > 0 && iov[0].iov_len == 0)
			iov++, n--;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n;
		if ((w = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			return -1;
		}
		total -= (size_t)w;
		for (; n > 0 && (size_t)w >= iov[0].iov_len; iov++, n--)
			w -= (ssize_t)iov[0].iov_len;
		if (n > 0) {
			iov[0].iov_base = (char *)iov[0].iov_base + w;
			iov[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	struct connio_buf *b = connio_get(fd);
	struct iovec all[CONNIO_MAXIOV + 1];
	size_t total = 0;
	int k = 0;

	if (b == NULL || n < 1 || n > CONNIO_MAXIOV)
		return syscall(SYS_writev, fd, iov, n);
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (connio_unanswered(iov, n) && total <= CONNIO_KEEP &&
	    b->wlen + total <= sizeof(b->wbuf)) {
		for (int i = 0; i < n; i++) {
			memcpy(b->wbuf + b->wlen, iov[i].iov_base, iov[i].iov_len);
			b->wlen += iov[i].iov_len;
		}
		return (ssize_t)total;
	}
	/* Whatever was kept goes first, in the same system call. */
	if (b->wlen > 0)
		all[k++] = (struct iovec){b->wbuf, b->wlen};
	memcpy(all + k, iov, (size_t)n * sizeof(*iov));
	k += n;
	if (connio_send_all(fd, all, k, total + b->wlen) == -1) {
		b->wlen = 0;
		return -1;
	}
	b->wlen = 0;
	return (ssize_t)total;
}

int
close(int fd)
{
	if (fd >= 0 && fd < CONNIO_MAXFD &&
	    atomic_load_explicit(&connio_slots[fd], memory_order_relaxed) != NULL)
		free(atomic_exchange(&connio_slots[fd], NULL));
	return __close(fd);
}
