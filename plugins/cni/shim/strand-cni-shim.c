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
 * -DFALLBACK_PATH. Request: "strand-cni/1\n", "plugin=NAME\n", one
 * "KEY=VALUE\n" per variable, an empty line, then stdin. Answer:
 * "exit N\n" then the plugin's stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef PLUGIN_NAME
#error "build with -DPLUGIN_NAME=..."
#endif

static const char *VARS[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS",
                             "CNI_PATH",    "STRAND_STORE",    "STRAND_RUN_DIR", NULL};

/* Becomes the full plugin; stdin is still unread. STRAND_CNI_REQUIRE_DAEMON=1 forbids it. */
static void fallback(char **argv) {
  (void)argv;
  const char *require = getenv("STRAND_CNI_REQUIRE_DAEMON");
  if (require && strcmp(require, "1") == 0) {
    printf("{\"code\":11,\"msg\":\"strand daemon is not reachable and STRAND_CNI_REQUIRE_DAEMON=1; start strand daemon\"}\n");
    exit(1);
  }
  char *const args[] = {(char *)NODE_PATH, (char *)FALLBACK_PATH, NULL};
  execv(NODE_PATH, args);
  printf("{\"code\":999,\"msg\":\"strand CNI plugin: cannot run %s: %s\"}\n", NODE_PATH, strerror(errno));
  exit(1);
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* After the request was sent, a failure is the runtime's to retry (code 11). */
static void gone(const char *what) {
  printf("{\"code\":11,\"msg\":\"strand daemon: %s: %s; try again\"}\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  (void)argc;
  const char *run_dir = getenv("STRAND_RUN_DIR");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int len = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/cni.sock", run_dir && *run_dir ? run_dir : "/run/strand");
  if (len < 0 || (size_t)len >= sizeof addr.sun_path) fallback(argv);

  /* The variables must frame as lines; anything else goes the long way. */
  for (const char **v = VARS; *v; v++) {
    const char *val = getenv(*v);
    if (val && strchr(val, '\n')) fallback(argv);
  }

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) fallback(argv);

  char line[8192];
  int n = snprintf(line, sizeof line, "strand-cni/1\nplugin=%s\n", PLUGIN_NAME);
  if (write_all(fd, line, (size_t)n) < 0) gone("sending the request");
  for (const char **v = VARS; *v; v++) {
    const char *val = getenv(*v);
    if (!val) continue;
    if (write_all(fd, *v, strlen(*v)) < 0 || write_all(fd, "=", 1) < 0 || write_all(fd, val, strlen(val)) < 0 || write_all(fd, "\n", 1) < 0)
      gone("sending the request");
  }
  if (write_all(fd, "\n", 1) < 0) gone("sending the request");

  char buf[65536];
  for (;;) {
    ssize_t r = read(0, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) gone("reading stdin");
    if (r == 0) break;
    if (write_all(fd, buf, (size_t)r) < 0) gone("sending the request");
  }
  shutdown(fd, SHUT_WR);

  /* "exit N\n" first, then everything else goes to stdout as it comes. */
  int code = -1;
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (code < 0) {
        errno = r == 0 ? ECONNRESET : errno;
        gone("reading the answer");
      }
      break;
    }
    if (code >= 0) {
      if (write_all(1, buf, (size_t)r) < 0) exit(1);
      continue;
    }
    have += (size_t)r;
    char *nl = memchr(buf, '\n', have);
    if (!nl) {
      if (have == sizeof buf) gone("reading the answer");
      continue;
    }
    if (sscanf(buf, "exit %d", &code) != 1) {
      errno = EPROTO;
      gone("reading the answer");
    }
    size_t rest = have - (size_t)(nl + 1 - buf);
    if (write_all(1, nl + 1, rest) < 0) exit(1);
  }
  return code;
}
