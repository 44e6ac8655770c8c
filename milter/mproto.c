/*
 * mproto: milter protocol v6 client (the MTA side), modelled on Postfix's
 * milter8.c: negotiate once per connection, send macros and events for each
 * stage the milter did not ask to skip, wait for a reply only where the
 * milter did not ask for "no reply", and read every modification at end of
 * message until the final verdict.  See mproto.h.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfdef.h>

#include "milter/mproto.h"
#include "src/xmalloc.h"

/* Largest reassembled replacement body. */
#define MPROTO_MAX_BODY (1024u * 1024 * 1024)
/* Most header modifications kept per message. */
#define MPROTO_MAX_HDRMOD 10000

/*
 * Action flags (mfapi.h's SMFIF_*): mfapi.h is libmilter's filter API, which
 * this client does not use, so the wire values are repeated here, as
 * Postfix's milter8.c does.
 */
#define ACT_ADDHDRS     0x01
#define ACT_CHGBODY     0x02
#define ACT_ADDRCPT     0x04
#define ACT_DELRCPT     0x08
#define ACT_CHGHDRS     0x10
#define ACT_QUARANTINE  0x20
#define ACT_CHGFROM     0x40
#define ACT_ADDRCPT_PAR 0x80

/* What this client offers, as Postfix does: every action and every step. */
#define OFFER_ACTIONS  SMFI_CURR_ACTS
#define OFFER_PROTOCOL SMFI_CURR_PROT

struct mproto {
	const struct mproto_conf *conf;
	int fd;
	int ready; /* negotiated, CONNECT and HELO done */
	uint32_t actions, protocol;
	unsigned char *wbuf; /* outgoing packet */
	size_t wlen, wcap;
	unsigned char *rbuf; /* last reply packet */
	size_t rcap;
};

static const char *const errkind_names[MPE_NKINDS] = {
    [MPE_NONE] = "none",
    [MPE_CONNECT] = "connect failed",
    [MPE_CLOSED] = "connection closed",
    [MPE_TIMEOUT] = "timeout",
    [MPE_IO] = "i/o error",
    [MPE_OVERSIZE] = "oversize packet",
    [MPE_MALFORMED] = "malformed reply",
    [MPE_UNEXPECTED] = "unexpected reply",
    [MPE_NEGOTIATE] = "negotiation failed",
};

const char *
mproto_errkind_name(enum mproto_errkind k)
{
	return (k >= 0 && k < MPE_NKINDS) ? errkind_names[k] : "unknown";
}

static int seterr(struct mproto_err *err, enum mproto_errkind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the error and returns -1 so callers can "return seterr(...)". */
static int
seterr(struct mproto_err *err, enum mproto_errkind kind, const char *fmt, ...)
{
	va_list ap;

	err->kind = kind;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double
now_ms_f(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits for events on fd until deadline; 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			continue;
		if (errno != EINTR)
			return -1;
	}
}

static int
write_all(struct mproto *m, const unsigned char *p, size_t n, struct mproto_err *err)
{
	int64_t deadline = now_ms() + m->conf->timeout_ms;
	ssize_t w;
	int r;

	while (n > 0) {
		w = send(m->fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r = wait_fd(m->fd, POLLOUT, deadline);
			if (r == 0)
				return seterr(err, MPE_TIMEOUT, "timeout writing to milter");
			if (r < 0)
				return seterr(err, MPE_IO, "poll: %s", strerror(errno));
			continue;
		}
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			return seterr(err, MPE_CLOSED, "connection closed by milter while writing");
		return seterr(err, MPE_IO, "write: %s", w < 0 ? strerror(errno) : "short");
	}
	return 0;
}

static int
read_full(struct mproto *m, unsigned char *p, size_t n, int64_t deadline, int started,
          struct mproto_err *err)
{
	ssize_t r;
	int w;

	while (n > 0) {
		r = recv(m->fd, p, n, 0);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			started = 1;
			continue;
		}
		if (r == 0)
			return seterr(err, MPE_CLOSED,
			              started ? "connection closed in the middle of a packet"
			                      : "connection closed by milter");
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET)
			return seterr(err, MPE_CLOSED, "connection reset by milter");
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return seterr(err, MPE_IO, "read: %s", strerror(errno));
		w = wait_fd(m->fd, POLLIN, deadline);
		if (w == 0)
			return seterr(err, MPE_TIMEOUT, "no reply within %d ms",
			              m->conf->timeout_ms);
		if (w < 0)
			return seterr(err, MPE_IO, "poll: %s", strerror(errno));
	}
	return 0;
}

/* Reads one reply packet; *data points into m->rbuf, valid until the next read. */
static int
recv_packet(struct mproto *m, char *cmd, const unsigned char **data, size_t *len,
            struct mproto_err *err)
{
	int64_t deadline = now_ms() + m->conf->timeout_ms;
	unsigned char hdr[5];
	uint32_t n;

	if (read_full(m, hdr, 4, deadline, 0, err) < 0)
		return -1;
	memcpy(&n, hdr, 4);
	n = ntohl(n);
	if (n == 0)
		return seterr(err, MPE_MALFORMED, "zero-length packet");
	if (n > MPROTO_MAX_PACKET)
		return seterr(err, MPE_OVERSIZE, "packet length %u exceeds %u", n,
		              MPROTO_MAX_PACKET);
	if (read_full(m, hdr + 4, 1, deadline, 1, err) < 0)
		return -1;
	*cmd = (char)hdr[4];
	n--;
	if (n > m->rcap) {
		free(m->rbuf);
		m->rcap = n < 65536 ? 65536 : n;
		m->rbuf = xmalloc(m->rcap);
	}
	if (n > 0 && read_full(m, m->rbuf, n, deadline, 1, err) < 0)
		return -1;
	*data = m->rbuf;
	*len = n;
	return 0;
}

/* Outgoing packet assembly in m->wbuf: 4 length bytes, the command, the data. */
static void
pk_reserve(struct mproto *m, size_t more)
{
	if (more > SIZE_MAX - m->wlen - 1) {
		fprintf(stderr, "mproto: packet too large\n");
		abort();
	}
	if (m->wlen + more > m->wcap) {
		size_t cap = m->wcap ? m->wcap : 1024;

		while (cap < m->wlen + more)
			cap *= 2;
		m->wbuf = xreallocarray(m->wbuf, cap, 1);
		m->wcap = cap;
	}
}

static void
pk_begin(struct mproto *m, char cmd)
{
	m->wlen = 0;
	pk_reserve(m, 5);
	m->wbuf[4] = (unsigned char)cmd;
	m->wlen = 5;
}

static void
pk_bytes(struct mproto *m, const void *p, size_t n)
{
	pk_reserve(m, n);
	if (n > 0)
		memcpy(m->wbuf + m->wlen, p, n);
	m->wlen += n;
}

static void
pk_u32(struct mproto *m, uint32_t v)
{
	v = htonl(v);
	pk_bytes(m, &v, 4);
}

/* Appends s and its terminating NUL. */
static void
pk_str(struct mproto *m, const char *s)
{
	pk_bytes(m, s, strlen(s) + 1);
}

static int
pk_send(struct mproto *m, struct mproto_result *res, struct mproto_err *err)
{
	uint32_t n = htonl((uint32_t)(m->wlen - 4));

	memcpy(m->wbuf, &n, 4);
	if (res != NULL)
		res->bytes_out += m->wlen - 5;
	return write_all(m, m->wbuf, m->wlen, err);
}

/* Sends an SMFIC_MACRO packet for stage with name/value pairs (NULL-terminated). */
static int
send_macros(struct mproto *m, char stage, const char *const *nv, struct mproto_err *err)
{
	char st[2] = {stage, 0};

	pk_begin(m, SMFIC_MACRO);
	pk_bytes(m, st, 1);
	for (; nv[0] != NULL; nv += 2) {
		if (nv[1] == NULL)
			continue;
		pk_str(m, nv[0]);
		pk_str(m, nv[1]);
	}
	return pk_send(m, NULL, err);
}

/* Returns a NUL-terminated string at data+*off and advances *off, or NULL. */
static const char *
get_str(const unsigned char *data, size_t len, size_t *off)
{
	const unsigned char *nul;
	const char *s;

	if (*off >= len)
		return NULL;
	nul = memchr(data + *off, 0, len - *off);
	if (nul == NULL)
		return NULL;
	s = (const char *)data + *off;
	*off = (size_t)(nul - data) + 1;
	return s;
}

static int
get_u32(const unsigned char *data, size_t len, size_t *off, uint32_t *v)
{
	if (len < 4 || *off > len - 4)
		return -1;
	memcpy(v, data + *off, 4);
	*v = ntohl(*v);
	*off += 4;
	return 0;
}

void
mproto_result_init(struct mproto_result *res)
{
	memset(res, 0, sizeof(*res));
}

void
mproto_result_reset(struct mproto_result *res)
{
	size_t i;

	for (i = 0; i < res->nhdrmod; i++) {
		free(res->hdrmod[i].name);
		free(res->hdrmod[i].value);
	}
	res->nhdrmod = 0;
	res->verdict = 0;
	res->stage = 0;
	res->replbody = 0;
	res->bodylen = 0;
	res->naddrcpt = res->ndelrcpt = res->nchgfrom = res->nquarantine = res->nprogress = 0;
	res->bytes_in = res->bytes_out = 0;
	res->eom_ms = 0;
	res->reply_text[0] = '\0';
}

void
mproto_result_free(struct mproto_result *res)
{
	if (res == NULL)
		return;
	mproto_result_reset(res);
	free(res->body);
	free(res->hdrmod);
	memset(res, 0, sizeof(*res));
}

struct mproto *
mproto_new(const struct mproto_conf *conf)
{
	struct mproto *m = xcalloc(1, sizeof(*m));

	m->conf = conf;
	m->fd = -1;
	return m;
}

void
mproto_close(struct mproto *m)
{
	struct mproto_err ignore;

	if (m == NULL || m->fd < 0)
		return;
	if (m->ready) {
		pk_begin(m, SMFIC_QUIT);
		(void)pk_send(m, NULL, &ignore);
	}
	close(m->fd);
	m->fd = -1;
	m->ready = 0;
}

/* Drops the connection without QUIT, after a protocol error. */
static void
mproto_drop(struct mproto *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	m->ready = 0;
}

void
mproto_free(struct mproto *m)
{
	if (m == NULL)
		return;
	mproto_close(m);
	free(m->wbuf);
	free(m->rbuf);
	free(m);
}

int
mproto_connected(const struct mproto *m)
{
	return m->fd >= 0 && m->ready;
}

uint32_t
mproto_actions(const struct mproto *m)
{
	return m->actions;
}

uint32_t
mproto_protocol(const struct mproto *m)
{
	return m->protocol;
}

/* Non-blocking connect bounded by the timeout. */
static int
connect_addr(struct mproto *m, const struct sockaddr *sa, socklen_t salen, struct mproto_err *err)
{
	int64_t deadline = now_ms() + m->conf->timeout_ms;
	int fd, r, soerr = 0;
	socklen_t sl = sizeof(soerr);

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return seterr(err, MPE_CONNECT, "socket: %s", strerror(errno));
	if (connect(fd, sa, salen) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			seterr(err, MPE_CONNECT, "connect %s: %s", m->conf->socket,
			       strerror(errno));
			goto fail;
		}
		r = wait_fd(fd, POLLOUT, deadline);
		if (r <= 0) {
			seterr(err, r == 0 ? MPE_TIMEOUT : MPE_CONNECT, "connect %s: %s",
			       m->conf->socket, r == 0 ? "timeout" : strerror(errno));
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
			seterr(err, MPE_CONNECT, "connect %s: %s", m->conf->socket,
			       strerror(soerr ? soerr : errno));
			goto fail;
		}
	}
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		int one = 1;

		/*
		 * Macro and command packets go out back to back without a reply
		 * between them; with Nagle on, the second waits for the peer's
		 * delayed ACK (40 ms) and every message measures that instead of
		 * the milter.  Postfix avoids it by writing both in one buffer.
		 */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	m->fd = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

static int
open_socket(struct mproto *m, struct mproto_err *err)
{
	const char *spec = m->conf->socket, *path = NULL, *at;
	struct addrinfo hints, *ai = NULL, *p;
	struct sockaddr_un sun;
	char port[16], host[256];
	size_t plen;
	int gai, ret = -1;

	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;
	if (path != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlcpy_checked(sun.sun_path, path, sizeof(sun.sun_path)) < 0)
			return seterr(err, MPE_CONNECT, "socket path too long: %s", path);
		return connect_addr(m, (struct sockaddr *)&sun, sizeof(sun), err);
	}
	if (strncmp(spec, "inet:", 5) == 0)
		spec += 5;
	else if (strncmp(spec, "inet6:", 6) == 0)
		spec += 6;
	else
		return seterr(err, MPE_CONNECT, "unsupported socket spec: %s", spec);
	at = strchr(spec, '@');
	plen = at ? (size_t)(at - spec) : strlen(spec);
	if (plen == 0 || plen >= sizeof(port))
		return seterr(err, MPE_CONNECT, "bad port in %s", m->conf->socket);
	memcpy(port, spec, plen);
	port[plen] = '\0';
	if (strlcpy_checked(host, at ? at + 1 : "127.0.0.1", sizeof(host)) < 0)
		return seterr(err, MPE_CONNECT, "host name too long");
	if (host[0] == '[') { /* [::1] */
		size_t hl = strlen(host);

		if (hl >= 2 && host[hl - 1] == ']') {
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = '\0';
		}
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	gai = getaddrinfo(host, port, &hints, &ai);
	if (gai != 0)
		return seterr(err, MPE_CONNECT, "%s: %s", m->conf->socket, gai_strerror(gai));
	for (p = ai; p != NULL; p = p->ai_next) {
		ret = connect_addr(m, p->ai_addr, p->ai_addrlen, err);
		if (ret == 0)
			break;
	}
	freeaddrinfo(ai);
	return ret;
}

/* Final replies at any stage: accept, continue, reject, tempfail, discard, replycode. */
static int
is_verdict(char c)
{
	return c == SMFIR_ACCEPT || c == SMFIR_CONTINUE || c == SMFIR_REJECT ||
	       c == SMFIR_TEMPFAIL || c == SMFIR_DISCARD || c == SMFIR_REPLYCODE ||
	       c == SMFIR_SHUTDOWN || c == SMFIR_CONN_FAIL;
}

/* Maps replycode/shutdown/conn_fail to the plain verdict letter they amount to. */
static char
verdict_letter(char cmd, const unsigned char *data, size_t len, struct mproto_result *res)
{
	size_t n;

	if (cmd == SMFIR_SHUTDOWN || cmd == SMFIR_CONN_FAIL)
		return SMFIR_TEMPFAIL;
	if (cmd != SMFIR_REPLYCODE)
		return cmd;
	n = len < sizeof(res->reply_text) - 1 ? len : sizeof(res->reply_text) - 1;
	memcpy(res->reply_text, data, n);
	res->reply_text[n] = '\0';
	return (len > 0 && data[0] == '4') ? SMFIR_TEMPFAIL : SMFIR_REJECT;
}

/*
 * Reads replies to one event until a verdict (progress packets are skipped;
 * SMFIR_SKIP is accepted for body chunks).  Returns 0 with *verdict set.
 */
static int
read_verdict(struct mproto *m, char stage, char *verdict, struct mproto_result *res,
             struct mproto_err *err)
{
	const unsigned char *data;
	size_t len;
	char cmd;

	for (;;) {
		if (recv_packet(m, &cmd, &data, &len, err) < 0)
			return -1;
		res->bytes_in += len;
		if (cmd == SMFIR_PROGRESS) {
			res->nprogress++;
			continue;
		}
		if (is_verdict(cmd) || (stage == SMFIC_BODY && cmd == SMFIR_SKIP)) {
			*verdict = verdict_letter(cmd, data, len, res);
			return 0;
		}
		return seterr(err, MPE_UNEXPECTED, "reply '%c' (0x%02x) to command '%c'",
		              cmd >= 0x20 && cmd < 0x7f ? cmd : '?', (unsigned char)cmd, stage);
	}
}

/* Sends the packet in wbuf and, unless nr_flag was negotiated, reads the verdict. */
static int
event(struct mproto *m, char stage, uint32_t nr_flag, char *verdict, struct mproto_result *res,
      struct mproto_err *err)
{
	*verdict = SMFIR_CONTINUE;
	if (pk_send(m, res, err) < 0)
		return -1;
	if (nr_flag != 0 && (m->protocol & nr_flag))
		return 0;
	return read_verdict(m, stage, verdict, res, err);
}

static int
negotiate(struct mproto *m, struct mproto_err *err)
{
	const unsigned char *data;
	size_t len, off = 0;
	uint32_t ver, act, proto;
	char cmd;

	pk_begin(m, SMFIC_OPTNEG);
	pk_u32(m, SMFI_PROT_VERSION);
	pk_u32(m, OFFER_ACTIONS);
	pk_u32(m, OFFER_PROTOCOL);
	if (pk_send(m, NULL, err) < 0)
		return -1;
	if (recv_packet(m, &cmd, &data, &len, err) < 0)
		return -1;
	if (cmd != SMFIC_OPTNEG)
		return seterr(err, MPE_NEGOTIATE, "expected OPTNEG reply, got '%c'", cmd);
	if (get_u32(data, len, &off, &ver) < 0 || get_u32(data, len, &off, &act) < 0 ||
	    get_u32(data, len, &off, &proto) < 0)
		return seterr(err, MPE_MALFORMED, "short OPTNEG reply (%zu bytes)", len);
	if (ver < 2 || ver > SMFI_PROT_VERSION)
		return seterr(err, MPE_NEGOTIATE, "milter protocol version %u unsupported", ver);
	if (act & ~(uint32_t)OFFER_ACTIONS)
		return seterr(err, MPE_NEGOTIATE, "milter requested unsupported actions 0x%x",
		              act & ~(uint32_t)OFFER_ACTIONS);
	/* The MDS size bits are libmilter-internal; ignore them as Postfix does. */
	proto &= ~(uint32_t)SMFI_INTERNAL;
	if (proto & ~(uint32_t)OFFER_PROTOCOL)
		return seterr(err, MPE_NEGOTIATE, "milter requested unsupported protocol 0x%x",
		              proto & ~(uint32_t)OFFER_PROTOCOL);
	/* XXX the optional macro lists after the masks are ignored: we always send ours. */
	m->actions = act;
	m->protocol = proto;
	return 0;
}

/* Connects, negotiates, sends CONNECT and HELO; a non-continue verdict ends in *verdict. */
static int
open_session(struct mproto *m, char *verdict, struct mproto_result *res, struct mproto_err *err)
{
	const struct mproto_conf *c = m->conf;
	struct in6_addr a6;
	int family = SMFIA_INET;
	uint16_t port = htons(25000);

	*verdict = SMFIR_CONTINUE;
	if (open_socket(m, err) < 0)
		return -1;
	if (negotiate(m, err) < 0)
		return -1;
	if (!(m->protocol & SMFIP_NOCONNECT)) {
		const char *mac[] = {"j",
		                     c->myhostname,
		                     "{daemon_name}",
		                     c->daemon_name,
		                     "{client_addr}",
		                     c->client_addr,
		                     "{client_name}",
		                     c->client_name,
		                     "_",
		                     c->client_name,
		                     NULL};

		if (send_macros(m, SMFIC_CONNECT, mac, err) < 0)
			return -1;
		if (inet_pton(AF_INET6, c->client_addr, &a6) == 1)
			family = SMFIA_INET6;
		pk_begin(m, SMFIC_CONNECT);
		pk_str(m, c->client_name);
		pk_bytes(m, family == SMFIA_INET6 ? "6" : "4", 1);
		pk_bytes(m, &port, 2);
		pk_str(m, c->client_addr);
		if (event(m, SMFIC_CONNECT, SMFIP_NR_CONN, verdict, res, err) < 0)
			return -1;
		if (*verdict != SMFIR_CONTINUE) {
			res->stage = SMFIC_CONNECT;
			return 0;
		}
	}
	if (!(m->protocol & SMFIP_NOHELO)) {
		pk_begin(m, SMFIC_HELO);
		pk_str(m, c->helo);
		if (event(m, SMFIC_HELO, SMFIP_NR_HELO, verdict, res, err) < 0)
			return -1;
		if (*verdict != SMFIR_CONTINUE) {
			res->stage = SMFIC_HELO;
			return 0;
		}
	}
	m->ready = 1;
	return 0;
}

/* Applies one end-of-message packet to res; *final set when it was the verdict. */
static int
eom_packet(struct mproto *m, char cmd, const unsigned char *data, size_t len,
           struct mproto_result *res, int *final, struct mproto_err *err)
{
	struct mproto_hdrmod *hm;
	const char *name, *value;
	uint32_t idx = 0, need = 0;
	size_t off = 0;

	*final = 0;
	switch (cmd) {
	case SMFIR_PROGRESS:
		res->nprogress++;
		return 0;
	case SMFIR_REPLBODY:
		need = ACT_CHGBODY;
		break;
	case SMFIR_ADDHEADER:
		need = ACT_ADDHDRS;
		break;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		need = cmd == SMFIR_INSHEADER ? ACT_ADDHDRS : ACT_CHGHDRS;
		if (get_u32(data, len, &off, &idx) < 0)
			return seterr(err, MPE_MALFORMED, "short header index in '%c'", cmd);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
		need = cmd == SMFIR_ADDRCPT ? ACT_ADDRCPT : ACT_ADDRCPT_PAR;
		break;
	case SMFIR_DELRCPT:
		need = ACT_DELRCPT;
		break;
	case SMFIR_CHGFROM:
		need = ACT_CHGFROM;
		break;
	case SMFIR_QUARANTINE:
		need = ACT_QUARANTINE;
		break;
	default:
		if (!is_verdict(cmd))
			return seterr(err, MPE_UNEXPECTED, "reply 0x%02x at end of message",
			              (unsigned char)cmd);
		res->verdict = verdict_letter(cmd, data, len, res);
		*final = 1;
		return 0;
	}
	if (!(m->actions & need))
		return seterr(err, MPE_UNEXPECTED, "modification '%c' not negotiated", cmd);
	if (cmd == SMFIR_REPLBODY) {
		if (len > MPROTO_MAX_BODY - res->bodylen)
			return seterr(err, MPE_OVERSIZE, "replacement body over %u bytes",
			              MPROTO_MAX_BODY);
		if (res->bodylen + len > res->bodycap) {
			size_t cap = res->bodycap ? res->bodycap : 65536;

			while (cap < res->bodylen + len)
				cap *= 2;
			res->body = xreallocarray(res->body, cap, 1);
			res->bodycap = cap;
		}
		if (len > 0)
			memcpy(res->body + res->bodylen, data, len);
		res->bodylen += len;
		res->replbody = 1;
		return 0;
	}
	/* Every other modification is one or two NUL-terminated strings. */
	if ((name = get_str(data, len, &off)) == NULL)
		return seterr(err, MPE_MALFORMED, "unterminated string in '%c'", cmd);
	value = get_str(data, len, &off);
	switch (cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (value == NULL || name[0] == '\0')
			return seterr(err, MPE_MALFORMED, "bad header modification '%c'", cmd);
		if (res->nhdrmod >= MPROTO_MAX_HDRMOD)
			return seterr(err, MPE_OVERSIZE, "more than %d header changes",
			              MPROTO_MAX_HDRMOD);
		if (res->nhdrmod == res->hdrmodcap) {
			res->hdrmodcap = res->hdrmodcap ? res->hdrmodcap * 2 : 8;
			res->hdrmod =
			    xreallocarray(res->hdrmod, res->hdrmodcap, sizeof(*res->hdrmod));
		}
		hm = &res->hdrmod[res->nhdrmod++];
		hm->op = cmd;
		hm->index = idx;
		hm->name = xstrdup(name);
		hm->value = xstrdup(value);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
		res->naddrcpt++;
		break;
	case SMFIR_DELRCPT:
		res->ndelrcpt++;
		break;
	case SMFIR_CHGFROM:
		res->nchgfrom++;
		break;
	case SMFIR_QUARANTINE:
		res->nquarantine++;
		break;
	}
	return 0;
}

/* Appends a header value as Postfix sends it: LF folds, leading space per HDR_LEADSPC. */
static void
pk_header_value(struct mproto *m, const struct mproto_header *h)
{
	const char *v = h->value, *end = h->value + h->valuelen;
	char nul = 0;

	if (!(m->protocol & SMFIP_HDR_LEADSPC))
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
	for (; v < end; v++)
		if (*v != '\r')
			pk_bytes(m, v, 1);
	pk_bytes(m, &nul, 1);
}

/* Runs MAIL..EOB for one message on an open session. */
static int
run_message(struct mproto *m, const struct mproto_msg *msg, struct mproto_result *res,
            struct mproto_err *err)
{
	const unsigned char *data;
	char v, cmd, buf[64];
	size_t i, off, len, nrej = 0;
	double t0;
	int final;

#define STOP_IF_FINAL(st)                                                                          \
	do {                                                                                       \
		if (v != SMFIR_CONTINUE) {                                                         \
			res->verdict = v;                                                          \
			res->stage = (st);                                                         \
			return 0;                                                                  \
		}                                                                                  \
	} while (0)

	if (!(m->protocol & SMFIP_NOMAIL)) {
		const char *mac[] = {"i",       msg->queue_id,   "{mail_addr}",
		                     msg->from, "{auth_authen}", m->conf->auth,
		                     NULL};

		if (send_macros(m, SMFIC_MAIL, mac, err) < 0)
			return -1;
		pk_begin(m, SMFIC_MAIL);
		snprintf(buf, sizeof(buf), "SIZE=%zu", msg->size);
		pk_bytes(m, "<", 1);
		pk_bytes(m, msg->from, strlen(msg->from));
		pk_str(m, ">");
		pk_str(m, buf);
		if (event(m, SMFIC_MAIL, SMFIP_NR_MAIL, &v, res, err) < 0)
			return -1;
		STOP_IF_FINAL(SMFIC_MAIL);
	}
	if (!(m->protocol & SMFIP_NORCPT)) {
		for (i = 0; i < msg->nrcpt; i++) {
			const char *mac[] = {"{rcpt_addr}", msg->rcpt[i], NULL};

			if (send_macros(m, SMFIC_RCPT, mac, err) < 0)
				return -1;
			pk_begin(m, SMFIC_RCPT);
			pk_bytes(m, "<", 1);
			pk_bytes(m, msg->rcpt[i], strlen(msg->rcpt[i]));
			pk_str(m, ">");
			if (event(m, SMFIC_RCPT, SMFIP_NR_RCPT, &v, res, err) < 0)
				return -1;
			/* A rejected recipient drops only that recipient, as in SMTP. */
			if (v == SMFIR_REJECT || v == SMFIR_TEMPFAIL) {
				if (++nrej == msg->nrcpt) {
					res->verdict = v;
					res->stage = SMFIC_RCPT;
					return 0;
				}
				continue;
			}
			STOP_IF_FINAL(SMFIC_RCPT);
		}
	}
	if (!(m->protocol & SMFIP_NODATA)) {
		pk_begin(m, SMFIC_DATA);
		if (event(m, SMFIC_DATA, SMFIP_NR_DATA, &v, res, err) < 0)
			return -1;
		STOP_IF_FINAL(SMFIC_DATA);
	}
	if (!(m->protocol & SMFIP_NOHDRS)) {
		for (i = 0; i < msg->nhdr; i++) {
			pk_begin(m, SMFIC_HEADER);
			pk_bytes(m, msg->hdr[i].name, msg->hdr[i].namelen);
			pk_bytes(m, "", 1);
			pk_header_value(m, &msg->hdr[i]);
			if (event(m, SMFIC_HEADER, SMFIP_NR_HDR, &v, res, err) < 0)
				return -1;
			STOP_IF_FINAL(SMFIC_HEADER);
		}
	}
	if (!(m->protocol & SMFIP_NOEOH)) {
		pk_begin(m, SMFIC_EOH);
		if (event(m, SMFIC_EOH, SMFIP_NR_EOH, &v, res, err) < 0)
			return -1;
		STOP_IF_FINAL(SMFIC_EOH);
	}
	if (!(m->protocol & SMFIP_NOBODY)) {
		for (off = 0; off < msg->bodylen; off += len) {
			len = msg->bodylen - off;
			if (len > MPROTO_CHUNK)
				len = MPROTO_CHUNK;
			pk_begin(m, SMFIC_BODY);
			pk_bytes(m, msg->body + off, len);
			if (event(m, SMFIC_BODY, SMFIP_NR_BODY, &v, res, err) < 0)
				return -1;
			if (v == SMFIR_SKIP)
				break;
			STOP_IF_FINAL(SMFIC_BODY);
		}
	}
	{
		const char *mac[] = {"i", msg->queue_id, NULL};

		if (send_macros(m, SMFIC_BODYEOB, mac, err) < 0)
			return -1;
	}
	pk_begin(m, SMFIC_BODYEOB);
	if (pk_send(m, res, err) < 0)
		return -1;
	t0 = now_ms_f();
	res->stage = SMFIC_BODYEOB;
	do {
		if (recv_packet(m, &cmd, &data, &len, err) < 0)
			return -1;
		res->bytes_in += len;
		if (eom_packet(m, cmd, data, len, res, &final, err) < 0)
			return -1;
	} while (!final);
	res->eom_ms = now_ms_f() - t0;
	return 0;
#undef STOP_IF_FINAL
}

int
mproto_transact(struct mproto *m, const struct mproto_msg *msg, struct mproto_result *res,
                struct mproto_err *err)
{
	char v;

	mproto_result_reset(res);
	err->kind = MPE_NONE;
	err->msg[0] = '\0';
	if (!m->ready) {
		if (m->fd >= 0)
			mproto_drop(m);
		if (open_session(m, &v, res, err) < 0)
			goto fail;
		if (!m->ready) {
			/* Connection-level verdict: it applies to this message, then hang up. */
			res->verdict = v;
			mproto_close(m);
			return 0;
		}
	}
	if (run_message(m, msg, res, err) < 0)
		goto fail;
	/* Postfix resets the milter between messages with ABORT (no reply). */
	pk_begin(m, SMFIC_ABORT);
	if (pk_send(m, NULL, err) < 0)
		goto fail;
	return 0;
fail:
	mproto_drop(m);
	return -1;
}
