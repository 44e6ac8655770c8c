# A private redis-server on a free loopback port for the end-to-end tests.
# Source after common.sh.  Sets REDIS_PORT and REDIS_PID.

: "${REDIS_SERVER:=$(command -v redis-server || echo /usr/bin/redis-server)}"

redis_available() {
	[ -x "$REDIS_SERVER" ]
}

redis_start() {
	REDIS_PORT=$(free_port)
	mkdir -p "$SMG_WORK/redis"
	"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$SMG_WORK/redis" --logfile "$SMG_WORK/redis/redis.log" --daemonize no &
	REDIS_PID=$!
	at_exit "kill -CONT $REDIS_PID; kill $REDIS_PID"
	wait_port "$REDIS_PORT" 10 || die "redis-server did not start"
}

redis_stop() {
	kill "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
}

# redis_cli ARGS...: one command through a tiny RESP client (no redis-tools needed).
redis_cli() {
	"$PYTHON3" - "$REDIS_PORT" "$@" <<'PY'
import socket, sys
port, args = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port), 2)
s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
f = s.makefile("rb")
def read():
    line = f.readline().rstrip(b"\r\n")
    t, rest = line[:1], line[1:]
    if t in (b"+", b"-", b":"):
        return rest.decode()
    if t == b"$":
        n = int(rest)
        if n < 0:
            return "(nil)"
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if t == b"*":
        return "\n".join(str(read()) for _ in range(int(rest)))
    return line.decode()
print(read())
PY
}
