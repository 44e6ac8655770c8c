/*
 * Unit tests for milter/connio.c, linked into this program so that its
 * accept(), read(), poll(), writev() and close() are the ones called here,
 * as they are for libmilter in the daemon: packets read through the
 * read-ahead buffer arrive whole and in order, poll() answers from the
 * buffer, edits are kept until a packet the MTA answers, a stuck MTA
 * times out instead of hanging, and close() forgets the connection.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "milter/connio.h"

static char dir[64];
static int lfd = -1;

static void
setup(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	strcpy(dir, "/tmp/test_connio.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
}

static void
teardown(void)
{
	char path[80];

	close(lfd);
	snprintf(path, sizeof(path), "%s/s", dir);
	unlink(path);
	rmdir(dir);
}

/* A connected pair: *srv through the interposed accept(), *cli plain. */
static void
pair(int *srv, int *cli)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", dir);
	*cli = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(connect(*cli, (struct sockaddr *)&sun, sizeof(sun)), 0);
	*srv = accept(lfd, NULL, NULL);
	cr_assert_geq(*srv, 0);
}

/* A milter packet: 4-byte length (command + data), command, data. */
static size_t
packet(unsigned char *out, char cmd, const void *data, size_t n)
{
	uint32_t l = htonl((uint32_t)n + 1);

	memcpy(out, &l, 4);
	out[4] = (unsigned char)cmd;
	if (n > 0)
		memcpy(out + 5, data, n);
	return n + 5;
}

/* Reads exactly n bytes the way libmilter does: poll, then read, looping. */
static void
read_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {fd, POLLIN, 0};
		cr_assert_eq(poll(&p, 1, 5000), 1);
		ssize_t r = read(fd, (char *)buf + got, n - got);
		cr_assert_gt(r, 0);
		got += (size_t)r;
	}
}

TestSuite(connio, .init = setup, .fini = teardown);

Test(connio, packets_arrive_whole_and_in_order_through_the_read_ahead)
{
	unsigned char wire[4096], hdr[5], data[256];
	size_t n = 0;
	int srv, cli;
	char name[32];

	pair(&srv, &cli);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "X-Field-%02d: value %d", i, i);
		n += packet(wire + n, 'L', name, strlen(name) + 1);
	}
	cr_assert_eq(write(cli, wire, n), (ssize_t)n, "the MTA sends the fields back to back");
	for (int i = 0; i < 20; i++) {
		read_exact(srv, hdr, 5);
		cr_assert_eq(hdr[4], 'L');
		uint32_t l;
		memcpy(&l, hdr, 4);
		l = ntohl(l) - 1;
		cr_assert_lt(l, sizeof(data));
		read_exact(srv, data, l);
		snprintf(name, sizeof(name), "X-Field-%02d: value %d", i, i);
		cr_assert_str_eq((char *)data, name);
	}
	/* Drained: poll() asks the kernel again, and nothing is there. */
	struct pollfd p = {srv, POLLIN, 0};
	cr_assert_eq(poll(&p, 1, 0), 0);
	close(srv);
	close(cli);
}

Test(connio, large_reads_bypass_the_buffer_and_keep_the_bytes)
{
	static unsigned char big[200000], got[200000];
	int srv, cli;

	pair(&srv, &cli);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	if (fork() == 0) {
		size_t off = 0;
		while (off < sizeof(big)) {
			ssize_t w = write(cli, big + off, sizeof(big) - off);
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	read_exact(srv, got, 3); /* small: fills the buffer */
	read_exact(srv, got + 3, sizeof(got) - 3);
	cr_assert_eq(memcmp(big, got, sizeof(big)), 0);
	close(srv);
	close(cli);
}

static ssize_t
send_packet(int fd, char cmd, const void *data, size_t n)
{
	unsigned char h[5];
	uint32_t l = htonl((uint32_t)n + 1);
	struct iovec iov[2];

	memcpy(h, &l, 4);
	h[4] = (unsigned char)cmd;
	iov[0] = (struct iovec){h, 5};
	iov[1] = (struct iovec){(void *)data, n};
	return writev(fd, iov, n > 0 ? 2 : 1);
}

Test(connio, edits_wait_for_the_reply_and_keep_their_order)
{
	static unsigned char body[100000], got[200000];
	unsigned char want[200000];
	size_t wn = 0, gn = 0;
	int srv, cli;
	ssize_t r;

	pair(&srv, &cli);
	memset(body, 'b', sizeof(body));
	cr_assert_eq(send_packet(srv, 'm', "\1\0Content-Type\0text/plain\0", 26), 31);
	cr_assert_eq(send_packet(srv, 'h', "MIME-Version\0" "1.0\0", 17), 22);
	wn += packet(want + wn, 'm', "\1\0Content-Type\0text/plain\0", 26);
	wn += packet(want + wn, 'h', "MIME-Version\0" "1.0\0", 17);
	/* Nothing has left yet: the MTA does not answer edits. */
	r = recv(cli, got, sizeof(got), MSG_DONTWAIT);
	cr_assert(r == -1 && errno == EAGAIN, "an edit was sent before the reply");
	/* A large body chunk goes out at once, after the kept edits. */
	cr_assert_eq(send_packet(srv, 'b', body, 60000), 60005);
	wn += packet(want + wn, 'b', body, 60000);
	cr_assert_eq(send_packet(srv, 'h', "X-A\0" "b\0", 6), 11);
	wn += packet(want + wn, 'h', "X-A\0" "b\0", 6);
	cr_assert_eq(send_packet(srv, 'a', NULL, 0), 5);
	wn += packet(want + wn, 'a', NULL, 0);
	while (gn < wn && (r = recv(cli, got + gn, sizeof(got) - gn, 0)) > 0)
		gn += (size_t)r;
	cr_assert_eq(gn, wn);
	cr_assert_eq(memcmp(got, want, wn), 0, "packets reordered or changed");
	close(srv);
	close(cli);
}

Test(connio, a_stuck_mta_times_out_instead_of_hanging)
{
	static unsigned char body[65536];
	int srv, cli, i;
	time_t t0;
	ssize_t r = 0;

	connio_timeout(1);
	pair(&srv, &cli);
	connio_timeout(0);
	t0 = time(NULL);
	/* The client never reads: the socket fills, then the send times out. */
	for (i = 0; i < 1000 && (r = send_packet(srv, 'b', body, sizeof(body) - 5)) > 0; i++)
		;
	cr_assert_eq(r, -1);
	cr_assert_eq(errno, ETIMEDOUT);
	cr_assert_leq(time(NULL) - t0, 10);
	close(srv);
	close(cli);
}

Test(connio, close_forgets_the_connection)
{
	int srv, cli, p[2];
	char c = 0;

	pair(&srv, &cli);
	cr_assert_eq(write(cli, "abc", 3), 3);
	cr_assert_eq(read(srv, &c, 1), 1); /* "bc" now sits in the buffer */
	close(srv);
	/* The descriptor number comes back for a pipe: nothing stale is read. */
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(dup2(p[0], srv), srv);
	cr_assert_eq(write(p[1], "z", 1), 1);
	cr_assert_eq(read(srv, &c, 1), 1);
	cr_assert_eq(c, 'z');
	struct pollfd pf = {srv, POLLIN, 0};
	cr_assert_eq(poll(&pf, 1, 0), 0, "poll answered from a forgotten buffer");
	close(srv);
	close(p[0]);
	close(p[1]);
	close(cli);
}
