/*
 * strand's CNI thin front. A runtime starts a CNI plugin for every verb; a
 * Node process alone takes ~50 ms to start, so the plugin executables are
 * this small program instead: it hands the request (the CNI_* variables and
 * stdin) to a running `strand daemon` over a unix socket and prints its
 * answer. When no daemon answers, it becomes the full Node plugin (exec), so
 * the plugins work with or without the daemon (unless
 * STRAND_CNI_REQUIRE_DAEMON=1, for those who want to know).
 *
 * Compiled by `strand cni install` with -DPLUGIN_NAME, -DNODE_PATH and
 * -DFALLBACK_PATH.
 *
 * Request: "strand-cni/2\n", "plugin=NAME\n", one "KEY=VALUE\n" per
 * variable, an empty line, then stdin; at most MAX_REQUEST bytes in all.
 * Answer: "exit N length L\n", exactly L bytes (the plugin's stdout), the end
 * of the stream.
 * (Version 1, which agent/cni-server.ts still answers for older fronts, has
 * "exit N\n" and stdout up to the end of the stream: a daemon that died
 * mid-answer cannot be told from a short answer, hence version 2.)
 *
 * Nothing reaches stdout before the whole answer has arrived and its length
 * matched. A daemon lost after the request was (partly) sent, a cut or
 * malformed answer, or no answer in time is CNI error 11 ("try again") with
 * the socket and what happened; a connect that fails or times out sends
 * nothing, so the Node plugin runs instead.
 *
 * Timeouts (seconds, decimals allowed; unset, empty, unparseable or not > 0
 * means the default): STRAND_CNI_CONNECT_TIMEOUT (2) bounds the connect,
 * STRAND_CNI_ANSWER_TIMEOUT (60) sending the request and receiving the whole
 * answer (stdin is the runtime's and read, as the Node plugin does, to its
 * end without a bound in time).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef PLUGIN_NAME
#error "build with -DPLUGIN_NAME=..."
#endif

/* Must equal MAX_REQUEST in agent/cni-server.ts: a longer request is dropped there unanswered. */
#define MAX_REQUEST ((size_t)16 << 20)
#define MAX_REQUEST_MIB 16
/* What this front holds of an answer at most (a plugin's result is a few KiB). */
#define MAX_ANSWER ((size_t)64 << 20)
/* "exit 255 length 67108864\n" fits with room to spare. */
#define MAX_ANSWER_HEADER 64
#define DEFAULT_CONNECT_S 2.0
#define DEFAULT_ANSWER_S 60.0

static const char *VARS[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS",
                             "CNI_PATH",    "STRAND_STORE",    "STRAND_RUN_DIR", NULL};

static struct sockaddr_un addr = {.sun_family = AF_UNIX};

/* Prints `s` as a JSON string body: quotes, backslashes and control bytes escaped. */
static void json_string(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
}

/* The CNI error JSON on stdout, then exit 1. */
static void cni_error(int code, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("{\"code\":%d,\"msg\":\"", code);
  json_string(msg);
  printf("\"}\n");
  fflush(stdout);
  exit(1);
}

/* Becomes the full plugin; nothing was sent and stdin is still unread. STRAND_CNI_REQUIRE_DAEMON=1 forbids it. */
static void fallback(const char *why) {
  const char *require = getenv("STRAND_CNI_REQUIRE_DAEMON");
  if (require && strcmp(require, "1") == 0)
    cni_error(11, "strand daemon is not reachable at %s (%s) and STRAND_CNI_REQUIRE_DAEMON=1; start strand daemon", addr.sun_path, why);
  char *const args[] = {(char *)NODE_PATH, (char *)FALLBACK_PATH, NULL};
  signal(SIGPIPE, SIG_DFL); /* an ignored signal stays ignored across exec */
  execv(NODE_PATH, args);
  cni_error(999, "strand CNI plugin: cannot run %s: %s", NODE_PATH, strerror(errno));
}

static double seconds_from_env(const char *name, double dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  char *end;
  double v = strtod(s, &end);
  if (*end || !(v > 0 && v <= 86400 * 365)) return dflt; /* also refuses NaN and infinities */
  return v;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static double answer_s;
static long long deadline;

/* Waits until `fd` is ready for `events` or the answer deadline passes (then error 11). */
static void wait_for(int fd, short events, const char *doing) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0)
      cni_error(11, "strand daemon at %s: no complete answer within %g s (%s; STRAND_CNI_ANSWER_TIMEOUT); try again", addr.sun_path, answer_s, doing);
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
    if (r > 0) return;
    if (r < 0 && errno != EINTR) cni_error(11, "strand daemon at %s: %s: poll: %s; try again", addr.sun_path, doing, strerror(errno));
  }
}

struct buf {
  char *data;
  size_t len, cap;
};

static void reserve(struct buf *b, size_t want) {
  if (b->cap >= want) return;
  size_t cap = b->cap ? b->cap : 65536;
  while (cap < want) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) cni_error(999, "strand CNI front: out of memory (%zu bytes)", cap);
  b->data = p;
  b->cap = cap;
}

static void append(struct buf *b, const char *s, size_t n) {
  reserve(b, b->len + n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static void append_str(struct buf *b, const char *s) { append(b, s, strlen(s)); }

/* stdin to its end into `b`, which must stay within MAX_REQUEST (else error 7: the daemon would drop it). */
static void read_stdin(struct buf *b) {
  size_t header = b->len;
  int flags = fcntl(0, F_GETFL);
  int nonblocking = flags >= 0 && (flags & O_NONBLOCK);
  for (;;) {
    if (b->len > MAX_REQUEST)
      cni_error(7, "the network config on stdin is too large: a request to strand daemon at %s is limited to %d MiB (%zu bytes; here %zu of them are variables)",
                addr.sun_path, MAX_REQUEST_MIB, MAX_REQUEST, header);
    /* One byte past the limit is enough to know it is over. */
    size_t room = MAX_REQUEST + 1 - b->len;
    reserve(b, b->len + (room < 65536 ? room : 65536));
    size_t space = b->cap - b->len;
    ssize_t r = read(0, b->data + b->len, space < room ? space : room);
    if (r > 0) {
      b->len += (size_t)r;
      continue;
    }
    if (r == 0) return;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && nonblocking) {
      struct pollfd p = {.fd = 0, .events = POLLIN};
      poll(&p, 1, -1);
      continue;
    }
    cni_error(11, "strand CNI front: cannot read stdin: %s; try again", strerror(errno));
  }
}

/* The request to the (non-blocking) socket; false when the daemon went away while it was being sent. */
static int send_request(int fd, const struct buf *req, int *err) {
  size_t off = 0;
  while (off < req->len) {
    ssize_t n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
    if (n >= 0) {
      off += (size_t)n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_for(fd, POLLOUT, "sending the request");
      continue;
    }
    *err = errno;
    return 0;
  }
  return 1;
}

/* Parses "exit N length L\n" at the start of `b`: 1 when whole, 0 when more bytes are needed, -1 when it cannot be one. */
static int parse_header(const struct buf *b, int *code, size_t *length, size_t *header_len) {
  const char *nl = memchr(b->data, '\n', b->len < MAX_ANSWER_HEADER ? b->len : MAX_ANSWER_HEADER);
  if (!nl) return b->len < MAX_ANSWER_HEADER ? 0 : -1;
  char line[MAX_ANSWER_HEADER + 1];
  size_t n = (size_t)(nl - b->data);
  memcpy(line, b->data, n);
  line[n] = 0;
  const char *p = line;
  if (strncmp(p, "exit ", 5) != 0) return -1;
  p += 5;
  if (*p < '0' || *p > '9') return -1;
  char *end;
  long c = strtol(p, &end, 10);
  if (c > 255) return -1;
  p = end;
  if (strncmp(p, " length ", 8) != 0) return -1;
  p += 8;
  if (*p < '0' || *p > '9') return -1;
  errno = 0;
  unsigned long long l = strtoull(p, &end, 10);
  if (*end || errno) return -1;
  *code = (int)c;
  *length = (size_t)l;
  *header_len = n + 1;
  if (l > MAX_ANSWER) return -2;
  return 1;
}

int main(void) {
  const char *run_dir = getenv("STRAND_RUN_DIR");
  int len = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/cni.sock", run_dir && *run_dir ? run_dir : "/run/strand");
  if (len < 0 || (size_t)len >= sizeof addr.sun_path) fallback("the socket path is too long");

  /* The variables must frame as lines; anything else goes the long way. */
  for (const char **v = VARS; *v; v++) {
    const char *val = getenv(*v);
    if (val && strchr(val, '\n')) fallback("a variable holds a newline");
  }

  /* A daemon that goes away must not kill this process before it says so. */
  signal(SIGPIPE, SIG_IGN);

  double connect_s = seconds_from_env("STRAND_CNI_CONNECT_TIMEOUT", DEFAULT_CONNECT_S);
  answer_s = seconds_from_env("STRAND_CNI_ANSWER_TIMEOUT", DEFAULT_ANSWER_S);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fallback(strerror(errno));
  /* A unix connect waits only while the listener's backlog is full; SO_SNDTIMEO bounds that wait (then EAGAIN). */
  struct timeval tv = {.tv_sec = (time_t)connect_s};
  tv.tv_usec = (suseconds_t)((connect_s - (double)tv.tv_sec) * 1e6);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN) fallback("connect timed out (STRAND_CNI_CONNECT_TIMEOUT)");
    fallback(strerror(errno));
  }

  /* The whole request is built before a byte is sent, so an oversized one is refused without the daemon seeing any. */
  struct buf req = {0};
  append_str(&req, "strand-cni/2\nplugin=" PLUGIN_NAME "\n");
  for (const char **v = VARS; *v; v++) {
    const char *val = getenv(*v);
    if (!val) continue;
    append_str(&req, *v);
    append_str(&req, "=");
    append_str(&req, val);
    append_str(&req, "\n");
  }
  append_str(&req, "\n");
  read_stdin(&req);

  deadline = now_ms() + (long long)(answer_s * 1000);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  int send_err = 0;
  int sent = send_request(fd, &req, &send_err);
  free(req.data);
  if (sent) shutdown(fd, SHUT_WR);

  /* The answer, whole, before anything goes to stdout. A daemon that dropped the request may still have said why. */
  struct buf ans = {0};
  int code = -1, have_header = 0;
  size_t length = 0, header_len = 0;
  int read_err = 0;
  for (;;) {
    /* Once the answer is whole, one byte more is asked for: the end of the stream must come next. */
    size_t want = have_header ? header_len + length + 1 - ans.len : 65536;
    reserve(&ans, ans.len + want);
    ssize_t r = read(fd, ans.data + ans.len, want);
    if (r > 0) {
      ans.len += (size_t)r;
      if (!have_header) {
        int h = parse_header(&ans, &code, &length, &header_len);
        if (h == -2)
          cni_error(11, "strand daemon at %s: announced an answer of %zu bytes, over this front's limit of %zu; try again", addr.sun_path, length, MAX_ANSWER);
        if (h < 0) {
          int old = ans.len >= 5 && strncmp(ans.data, "exit ", 5) == 0;
          cni_error(11, "strand daemon at %s: %s; try again", addr.sun_path,
                    old ? "the answer has no length (a daemon older than this front? restart strand daemon)" : "the answer does not start with \"exit N length L\"");
        }
        if (h == 1) have_header = 1;
      }
      if (have_header && ans.len > header_len + length)
        cni_error(11, "strand daemon at %s: the answer is longer than the %zu bytes it announced; try again", addr.sun_path, length);
      continue;
    }
    if (r == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_for(fd, POLLIN, have_header || ans.len ? "receiving the answer" : "waiting for the answer");
      continue;
    }
    read_err = errno;
    break;
  }
  close(fd);

  if (!have_header || ans.len < header_len + length) {
    char what[256];
    if (read_err) snprintf(what, sizeof what, "%s", strerror(read_err));
    else snprintf(what, sizeof what, "the connection was closed");
    if (!sent)
      cni_error(11, "strand daemon at %s: connection lost while sending the request (%s); try again", addr.sun_path, strerror(send_err));
    if (!ans.len) cni_error(11, "strand daemon at %s: no answer (%s); try again", addr.sun_path, what);
    if (!have_header) cni_error(11, "strand daemon at %s: the answer was cut inside its first line (%s); try again", addr.sun_path, what);
    cni_error(11, "strand daemon at %s: the answer was cut after %zu of %zu bytes (%s); try again", addr.sun_path, ans.len - header_len, length, what);
  }

  /* Whole and checked: the daemon's stdout and exit code are the plugin's. */
  const char *out = ans.data + header_len;
  size_t left = length;
  while (left > 0) {
    ssize_t n = write(1, out, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p = {.fd = 1, .events = POLLOUT};
        poll(&p, 1, -1);
        continue;
      }
      return 1;
    }
    out += n;
    left -= (size_t)n;
  }
  return code;
}
