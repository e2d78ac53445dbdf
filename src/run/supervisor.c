/*
 * tsd-supervisor: keeps one detached container company, like podman's conmon, in C because the
 * job needs prctl(PR_SET_CHILD_SUBREAPER), setns() and ~100 KB of memory, none of which Node can
 * give (one Node process is ~40 MB; see docs/run.md for the measurements). Compiled on first use
 * with the machine's cc (src/run/supervisor-binary.ts). It:
 *  - starts the container with `RUNTIME run -d`, its stdout/stderr going straight to
 *    stdout.log/stderr.log (no copying: killing us cannot lose or block output);
 *  - is the container's subreaper, so it reaps it and records state.json atomically (temp +
 *    rename): running, exit code, OOM kill (memory.oom_control), restart count, health;
 *  - notes when each log grew (inotify → stdout.idx/stderr.idx), so `logs -t` can date lines;
 *  - rotates each log once it reaches $TSD_LOG_MAX_SIZE bytes, keeping $TSD_LOG_MAX_FILE files in
 *    all (copy-truncate: X.log is copied to X.log.1 and truncated; the container's O_APPEND fd
 *    writes on at the new end, so it never needs reopening and nothing sits between it and disk);
 *  - applies the restart policy, runs the HEALTHCHECK with `RUNTIME exec`, publishes ports (TCP
 *    and UDP, IPv4 and IPv6 host addresses);
 *  - with $TSD_TTY=1, receives the container's pty master from the runtime (--console-socket),
 *    copies its output to stdout.log and keeps it open (the container outlives any client);
 *    with $TSD_STDIN=1, keeps the write end of the container's stdin pipe. `tsd-run attach`
 *    clients connect to an abstract unix socket (same uid only) and send their input (and, for a
 *    pty, window sizes) in small frames: 'd' LEN16 BYTES | 'w' ROWS16 COLS16;
 *  - forwards SIGTERM/SIGINT it receives to the container as its stop signal ($TSD_STOP_SIGNAL);
 *  - runs as two processes, a watchdog and a worker, both subreapers: `kill -9` of either one
 *    leaves the other to reap the container and record its exit code.
 * Usage: tsd-supervisor DIR RUNTIME RUNTIME_ROOT ID MEMCG POLICY MAX AUTOREMOVE (or DIR/autoremove at exit)
 *                       HEALTH_INTERVAL_MS HEALTH_TIMEOUT_MS HEALTH_RETRIES HEALTH_START_MS
 *                       NPORTS [[?]IP:HOST:CONTAINER[/udp]…] [HEALTH ARGV…]   (HOST 0: the kernel's choice, in DIR/ports)
 * fd 3, when open, receives "ok PID\n" or "fail\n" once the first start is known, then closes.
 *
 * Second job, for a foreground `tsd-run` (bench/run: spawning mount(8) and umount(8) cost ~15 ms):
 *   tsd-supervisor rootfs TARGET DATA VOLATILE
 * mounts the overlay (DATA: lowerdir=…,upperdir=…,workdir=…; VOLATILE 1 adds ",volatile", dropped
 * when the kernel refuses it), prints "ok" or "fail REASON", then waits on stdin: "u" unmounts,
 * "r DIR" unmounts and removes DIR; end of input (tsd-run died) unmounts. It ignores terminal
 * signals: a ^C meant for the container must not leave the mount behind.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAXPORTS 32 /* ports.ts MAX_BINDINGS */
#define MAXCONN 64
#define MAXUDP 64
#define UDP_IDLE_MS 90000 /* as docker-proxy: a UDP "session" ends after 90 s without a datagram */
#define MAXCLIENTS 8

static const char *dir, *runtime, *rtroot, *id, *memcg, *policy;
static int maxrestarts, autoremove, nports, hargc;
static long h_interval, h_timeout, h_retries, h_start;
static char **hargv;
static struct { char ip[64]; int hport, cport, fd, udp, optional, any; } ports[MAXPORTS]; /* any: HOST was 0, the kernel chose hport */
static struct { int a, b; } conns[MAXCONN];
/* one UDP session per (published port, client address): its own socket inside the container */
static struct { int fd, port; struct sockaddr_storage peer; socklen_t plen; long long last; } udps[MAXUDP];
/* the pty master (-t) or the write end of the container's stdin pipe (-i): where attach input goes */
static int tty = 0, keepstdin = 0, masterfd = -1, stdinw = -1, outfd = -1, handoff = -1, attachfd = -1;
static struct { int fd, len, olen; unsigned char in[4100], out[4096]; } clients[MAXCLIENTS];
static int statusfd = -1, hostns = -1;
static pid_t cpid = 0, hpid = 0;
static int restarts = 0, streak = 0, exited = 0, wstatus = 0;
static char started[40], health[16] = "", hout[512] = "";
static int hlast = -1;
/* log time index: the container writes its logs itself; we watch them (inotify) and note
   "SIZE EPOCH_NS" in stdout.idx/stderr.idx each time one grows, so `logs -t` can date lines */
static int ifd = -1, logfd[2] = {-1, -1}, idxfd[2] = {-1, -1};
static long long logsize[2];
/* rotation (--log-opt): 0 = never */
static long long maxsize = 0;
static int maxfile = 1;
static long long hdeadline = 0, hnext = 0, tstart = 0;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void iso_now(char *buf, size_t n) {
  struct timespec t;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &t);
  gmtime_r(&t.tv_sec, &tm);
  size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + k, n - k, ".%09ldZ", t.tv_nsec);
}

static void path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* state.json, written to a temp file and renamed: readers never see half of it */
static void write_state(const char *status, int code, int oom) {
  char tmp[4096], dst[4096], fin[40];
  path(dst, sizeof dst, "state.json");
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", dst, (int)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "{\"status\":\"%s\"", status);
  if (cpid > 0 && strcmp(status, "running") == 0) fprintf(f, ",\"pid\":%d", (int)cpid);
  if (started[0]) fprintf(f, ",\"startedAt\":\"%s\"", started);
  if (strcmp(status, "running") != 0) {
    iso_now(fin, sizeof fin);
    fprintf(f, ",\"finishedAt\":\"%s\",\"exitCode\":%d,\"oomKilled\":%s", fin, code, oom ? "true" : "false");
  }
  fprintf(f, ",\"restartCount\":%d", restarts);
  if (health[0]) {
    fprintf(f, ",\"health\":{\"status\":\"%s\",\"failingStreak\":%d", health, streak);
    if (hlast >= 0) {
      fprintf(f, ",\"lastExitCode\":%d,\"lastOutput\":", hlast);
      json_str(f, hout);
    }
    fputc('}', f);
  }
  fputs("}\n", f);
  fflush(f);
  fsync(fileno(f));
  fclose(f);
  rename(tmp, dst);
}

static void save_counter(void) {
  char p[4096];
  path(p, sizeof p, "restart-count");
  FILE *f = fopen(p, "w");
  if (f) { fprintf(f, "%d %s\n", restarts, started); fclose(f); }
}

static void load_counter(void) {
  char p[4096];
  path(p, sizeof p, "restart-count");
  FILE *f = fopen(p, "r");
  if (f) { if (fscanf(f, "%d %39s", &restarts, started) < 1) restarts = 0; fclose(f); }
}

static pid_t read_pid(void) {
  char p[4096];
  int v = 0;
  path(p, sizeof p, "pid");
  FILE *f = fopen(p, "r");
  if (f) { if (fscanf(f, "%d", &v) != 1) v = 0; fclose(f); }
  return v;
}

/* runs RUNTIME with args; stdout/stderr to the logs (so a runtime error is in the log too);
   stdin from `in` (the container's stdin pipe) or /dev/null */
static pid_t spawn_runtime_in(char *const args[], int in, int out, int err) {
  pid_t p = fork();
  if (p == 0) {
    if (hostns >= 0) setns(hostns, CLONE_NEWNET);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int nul = open("/dev/null", O_RDWR);
    dup2(in >= 0 ? in : nul, 0);
    dup2(out >= 0 ? out : nul, 1);
    dup2(err >= 0 ? err : nul, 2);
    execvp(args[0], args);
    _exit(127);
  }
  return p;
}

static pid_t spawn_runtime(char *const args[], int out, int err) { return spawn_runtime_in(args, -1, out, err); }

/* passes fd to the watchdog through the socketpair and leaves it there: a descriptor in flight
   stays open, so the pty (or the stdin pipe) outlives a kill -9 of the worker, and the watchdog
   picks it up when it takes over */
static void hand_off(int fd, char kind) {
  if (handoff < 0 || fd < 0) return;
  char c = kind;
  struct iovec io = {.iov_base = &c, .iov_len = 1};
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c0 = CMSG_FIRSTHDR(&m);
  c0->cmsg_level = SOL_SOCKET;
  c0->cmsg_type = SCM_RIGHTS;
  c0->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c0), &fd, sizeof(int));
  if (sendmsg(handoff, &m, MSG_DONTWAIT) < 0) {}
}

/* receives one descriptor (and its kind byte) from a unix socket: -1 when nothing came, -2 for a
   message without one */
static int recv_fd(int sock, char *kind, int flags) {
  char c = 0;
  struct iovec io = {.iov_base = &c, .iov_len = 1};
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  if (recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC) <= 0) return -1;
  if (kind) *kind = c;
  struct cmsghdr *c0 = CMSG_FIRSTHDR(&m);
  if (!c0 || c0->cmsg_level != SOL_SOCKET || c0->cmsg_type != SCM_RIGHTS) return -2; /* a message, no descriptor */
  int fd;
  memcpy(&fd, CMSG_DATA(c0), sizeof(int));
  if (kind) *kind = c;
  return fd;
}

static void set_winsize(int rows, int cols) {
  if (masterfd < 0 || rows <= 0 || cols <= 0) return;
  struct winsize w = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  ioctl(masterfd, TIOCSWINSZ, &w);
}

static int wait_for(pid_t p) {
  int st = 0;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  return st;
}

static int start_container(void) {
  char pidfile[4096], bundle[4096], log[4096], o[4096], e[4096], csdir[64] = "", cs[128] = "";
  path(pidfile, sizeof pidfile, "pid");
  path(bundle, sizeof bundle, "bundle");
  path(log, sizeof log, "runtime.log");
  path(o, sizeof o, "stdout.log");
  path(e, sizeof e, "stderr.log");
  unlink(pidfile);
  int out = open(o, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int err = open(e, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  /* -t: the runtime sends the pty master over a unix socket (a short path: sun_path is 108 bytes) */
  int lsock = -1, pin[2] = {-1, -1};
  if (tty) {
    strcpy(csdir, "/tmp/tsd-console-XXXXXX");
    if (!mkdtemp(csdir)) { close(out); close(err); return -1; }
    snprintf(cs, sizeof cs, "%s/sock", csdir);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", cs);
    lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lsock < 0 || bind(lsock, (struct sockaddr *)&a, sizeof a) < 0 || listen(lsock, 1) < 0) {
      if (lsock >= 0) close(lsock);
      rmdir(csdir);
      close(out); close(err);
      return -1;
    }
  } else if (keepstdin && pipe2(pin, O_CLOEXEC) < 0) pin[0] = pin[1] = -1;
  char *args[20];
  int k = 0;
  char *fixed[] = {(char *)runtime, "--root", (char *)rtroot, "--log", log, "--log-format", "json", "run", "-d", "--pid-file", pidfile, "--bundle", bundle};
  for (size_t j = 0; j < sizeof fixed / sizeof fixed[0]; j++) args[k++] = fixed[j];
  if (tty) { args[k++] = "--console-socket"; args[k++] = cs; }
  args[k++] = (char *)id;
  args[k] = NULL;
  /* the fds must survive exec in the child: clear close-on-exec there via dup2 (dup2 clears it) */
  int st = wait_for(spawn_runtime_in(args, pin[0], out, err));
  close(out);
  close(err);
  if (pin[0] >= 0) close(pin[0]);
  if (tty) {
    /* the runtime has connected and sent the master before it exited: it waits in the backlog */
    int c = -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      struct pollfd pf = {.fd = lsock, .events = POLLIN};
      if (poll(&pf, 1, 5000) > 0) c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
    }
    if (c >= 0) {
      struct pollfd pf = {.fd = c, .events = POLLIN};
      if (poll(&pf, 1, 5000) > 0) {
        if (masterfd >= 0) close(masterfd);
        masterfd = recv_fd(c, NULL, 0);
      }
      close(c);
    }
    close(lsock);
    unlink(cs);
    rmdir(csdir);
    if (masterfd >= 0) {
      fcntl(masterfd, F_SETFL, fcntl(masterfd, F_GETFL) | O_NONBLOCK);
      const char *sz = getenv("TSD_TTY_SIZE");
      int rows = 0, cols = 0;
      if (sz && sscanf(sz, "%d %d", &rows, &cols) == 2) set_winsize(rows, cols);
      hand_off(masterfd, 'm');
    }
  }
  if (pin[1] >= 0) {
    if (stdinw >= 0) close(stdinw);
    stdinw = pin[1];
    fcntl(stdinw, F_SETFL, fcntl(stdinw, F_GETFL) | O_NONBLOCK);
    hand_off(stdinw, 'i');
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
  if (tty && masterfd < 0) return -1;
  cpid = read_pid();
  if (cpid <= 0) return -1;
  iso_now(started, sizeof started);
  tstart = now_ms();
  exited = 0;
  save_counter();
  return 0;
}

static void delete_container(void) {
  char *args[] = {(char *)runtime, "--root", (char *)rtroot, "delete", "--force", (char *)id, NULL};
  wait_for(spawn_runtime(args, -1, -1));
}

static int oom_killed(void) {
  char p[4096], line[256];
  int hit = 0;
  snprintf(p, sizeof p, "%s/memory.oom_control", memcg);
  FILE *f = fopen(p, "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    long v;
    if (sscanf(line, "oom_kill %ld", &v) == 1 && v > 0) hit = 1;
  }
  fclose(f);
  return hit;
}

static void close_conns(void) {
  for (int i = 0; i < MAXCONN; i++)
    if (conns[i].a > 0) { close(conns[i].a); close(conns[i].b); conns[i].a = conns[i].b = 0; }
  for (int i = 0; i < MAXUDP; i++)
    if (udps[i].fd > 0) { close(udps[i].fd); udps[i].fd = 0; }
}

/* a host address, IPv4 or IPv6 ("::1", "0.0.0.0"), with a port */
static socklen_t host_addr(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1) return 0;
    return sizeof *a;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) return 0;
  return sizeof *a;
}

/* listeners are bound in the host's namespace; then we enter the container's, where connect() goes.
   Returns 0, or -1 with the first failure in `why` (a port in use: the start fails, as Docker's) */
static char portfail[256];
/* a socket for ports[i] bound to HPORT (0: the kernel's choice) and listening; -1 with errno, or
   with *invalid set for an address that does not parse */
static int open_port(int i, int hport, int *invalid) {
  struct sockaddr_storage a;
  socklen_t alen = host_addr(ports[i].ip, hport, &a);
  *invalid = alen == 0;
  if (alen == 0) return -1;
  int fd = socket(a.ss_family, (ports[i].udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, alen) < 0 || (!ports[i].udp && listen(fd, 128) < 0)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int bind_ports(void) {
  int rc = 0;
  for (int i = 0; i < nports; i++) {
    if (ports[i].fd > 0) continue;
    int invalid = 0, fd;
    /* `-p 80` without an IP: its [::] twin asks for the port the kernel gave the 0.0.0.0 one, as
       Docker's does, and takes a port of its own if that one is taken on [::] */
    int twin = ports[i].any && ports[i].optional && i > 0 && ports[i - 1].any && ports[i - 1].fd > 0 && ports[i - 1].cport == ports[i].cport && ports[i - 1].udp == ports[i].udp;
    fd = open_port(i, twin ? ports[i - 1].hport : ports[i].hport, &invalid);
    if (fd < 0 && twin && errno == EADDRINUSE) fd = open_port(i, 0, &invalid);
    if (fd < 0) {
      int e = errno;
      if (ports[i].optional && !invalid && (e == EAFNOSUPPORT || e == EADDRNOTAVAIL)) {
        /* [::] added for a -p without an IP: a host without IPv6 publishes on 0.0.0.0 only, as Docker */
        ports[i].fd = -1;
        continue;
      }
      const char *ip = ports[i].ip;
      int v6 = strchr(ip, ':') != NULL;
      if (rc == 0)
        snprintf(portfail, sizeof portfail, "publish %s%s%s:%d/%s: %s", v6 ? "[" : "", ip, v6 ? "]" : "", ports[i].hport, ports[i].udp ? "udp" : "tcp",
                 invalid ? "invalid address" : e == EADDRINUSE ? "the port is already in use" : strerror(e));
      fprintf(stderr, "tsd-supervisor: %s\n", portfail);
      rc = -1;
    } else if (ports[i].any) {
      struct sockaddr_storage got;
      socklen_t glen = sizeof got;
      if (getsockname(fd, (struct sockaddr *)&got, &glen) == 0)
        ports[i].hport = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port : ((struct sockaddr_in *)&got)->sin_port);
    }
    ports[i].fd = fd;
  }
  return rc;
}

/* the host ports the kernel chose (-p 80): DIR/ports, one a line in binding order (0: not bound),
   for ps and inspect, and for the watchdog to bind the same ones again if it takes over */
static void save_ports(void) {
  int any = 0;
  for (int i = 0; i < nports; i++) any |= ports[i].any;
  if (!any) return;
  char dst[4096], tmp[4200];
  path(dst, sizeof dst, "ports");
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", dst, (int)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  for (int i = 0; i < nports; i++) fprintf(f, "%d\n", ports[i].fd > 0 ? ports[i].hport : 0);
  fclose(f);
  rename(tmp, dst);
}

static void load_ports(void) {
  char p[4096];
  path(p, sizeof p, "ports");
  FILE *f = fopen(p, "r");
  if (!f) return;
  for (int i = 0; i < nports; i++) {
    int v = 0;
    if (fscanf(f, "%d", &v) != 1) break;
    if (ports[i].any && v > 0) { ports[i].hport = v; ports[i].any = 0; } /* the same port again, not a new one */
  }
  fclose(f);
}

/* the container is done for good: its ports are free at once (not when we exit) */
static void close_ports(void) {
  for (int i = 0; i < nports; i++)
    if (ports[i].fd > 0) { close(ports[i].fd); ports[i].fd = 0; }
}

static void enter_netns(void) {
  if (nports == 0 || cpid <= 0) return;
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/net", (int)cpid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) { setns(fd, CLONE_NEWNET); close(fd); }
}

/* a socket inside the container (we are in its namespace) connected to its loopback: 127.0.0.1,
   or ::1 for a service that listens on IPv6 loopback only */
static int connect_inside(int type, int cport) {
  int b = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(cport)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (b >= 0 && connect(b, (struct sockaddr *)&to, sizeof to) == 0) return b;
  if (b >= 0) close(b);
  if (type != SOCK_STREAM) return -1;
  b = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
  struct sockaddr_in6 to6 = {.sin6_family = AF_INET6, .sin6_port = htons(cport), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (b >= 0 && connect(b, (struct sockaddr *)&to6, sizeof to6) == 0) return b;
  if (b >= 0) close(b);
  return -1;
}

static void accept_conn(int lfd, int cport) {
  int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0) return;
  int b = connect_inside(SOCK_STREAM, cport);
  if (b < 0) { close(a); return; }
  for (int i = 0; i < MAXCONN; i++)
    if (conns[i].a == 0) { conns[i].a = a; conns[i].b = b; return; }
  close(a);
  close(b);
}

/* a datagram on a published UDP port: to the client's session (made on its first datagram) */
static void udp_in(int port) {
  unsigned char buf[65536];
  struct sockaddr_storage peer;
  for (;;) {
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(ports[port].fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
    if (n < 0) return;
    int s = -1, freeslot = -1;
    for (int i = 0; i < MAXUDP; i++) {
      if (udps[i].fd > 0 && udps[i].port == port && udps[i].plen == plen && memcmp(&udps[i].peer, &peer, plen) == 0) { s = i; break; }
      if (udps[i].fd <= 0 && freeslot < 0) freeslot = i;
    }
    if (s < 0) {
      if (freeslot < 0) { /* full: the session idle longest gives way */
        freeslot = 0;
        for (int i = 1; i < MAXUDP; i++) if (udps[i].last < udps[freeslot].last) freeslot = i;
        close(udps[freeslot].fd);
        udps[freeslot].fd = 0;
      }
      int fd = connect_inside(SOCK_DGRAM, ports[port].cport);
      if (fd < 0) continue;
      fcntl(fd, F_SETFL, O_NONBLOCK);
      s = freeslot;
      udps[s].fd = fd;
      udps[s].port = port;
      udps[s].peer = peer;
      udps[s].plen = plen;
    }
    udps[s].last = now_ms();
    if (send(udps[s].fd, buf, (size_t)n, 0) < 0) {}
  }
}

/* a reply from the container: back to the client, from the published address */
static void udp_out(int s) {
  unsigned char buf[65536];
  for (;;) {
    ssize_t n = recv(udps[s].fd, buf, sizeof buf, 0);
    if (n < 0) return; /* EAGAIN, or ECONNREFUSED: nothing listens inside (yet) */
    udps[s].last = now_ms();
    if (sendto(ports[udps[s].port].fd, buf, (size_t)n, 0, (struct sockaddr *)&udps[s].peer, udps[s].plen) < 0) {}
  }
}

static long long udp_expire(long long t) {
  long long next = -1;
  for (int i = 0; i < MAXUDP; i++) {
    if (udps[i].fd <= 0) continue;
    if (t - udps[i].last >= UDP_IDLE_MS) { close(udps[i].fd); udps[i].fd = 0; continue; }
    long long w = udps[i].last + UDP_IDLE_MS;
    if (next < 0 || w < next) next = w;
  }
  return next;
}

/* the attach socket: abstract (no file to leave behind; it goes when we die), bound in the host's
   network namespace (abstract names belong to one), and only for callers of our own uid */
static void bind_attach(void) {
  if ((!tty && !keepstdin) || attachfd >= 0) return;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "tsd-attach/%s", id);
  attachfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (attachfd < 0) return;
  /* the whole sun_path, zero-padded, is the name: that is how Node (libuv) connects to "\0NAME" */
  if (bind(attachfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(attachfd, 8) < 0) {
    fprintf(stderr, "tsd-supervisor: attach socket: %s\n", strerror(errno));
    close(attachfd);
    attachfd = -1;
  }
}

static void accept_client(void) {
  int c = accept4(attachfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0) return;
  struct ucred cr;
  socklen_t l = sizeof cr;
  if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 || (cr.uid != geteuid() && cr.uid != 0)) { close(c); return; }
  for (int i = 0; i < MAXCLIENTS; i++)
    if (clients[i].fd <= 0) { clients[i].fd = c; clients[i].len = clients[i].olen = 0; return; }
  close(c);
}

static void drop_client(int i) {
  close(clients[i].fd);
  clients[i].fd = 0;
  clients[i].len = clients[i].olen = 0;
}

/* where a client's input goes: the pty, or the stdin pipe */
static int input_fd(void) { return masterfd >= 0 ? masterfd : stdinw; }

static void flush_client(int i) {
  int to = input_fd();
  if (clients[i].olen == 0) return;
  if (to < 0) { clients[i].olen = 0; return; }
  ssize_t w = write(to, clients[i].out, (size_t)clients[i].olen);
  if (w < 0) { if (errno != EAGAIN && errno != EINTR) clients[i].olen = 0; return; }
  memmove(clients[i].out, clients[i].out + w, (size_t)(clients[i].olen - w));
  clients[i].olen -= (int)w;
}

/* parses what a client sent: 'd' LEN16 BYTES (input) or 'w' ROWS16 COLS16 (a pty's window
   size) or 'e' (end of input); stops while input waits to be written (the container reads slower than we are fed) */
static void client_parse(int i) {
  unsigned char *b = clients[i].in;
  int off = 0;
  while (clients[i].olen == 0 && clients[i].len - off >= 1) {
    int left = clients[i].len - off;
    if (b[off] == 'w') {
      if (left < 5) break;
      set_winsize(b[off + 1] << 8 | b[off + 2], b[off + 3] << 8 | b[off + 4]);
      off += 5;
      continue;
    }
    if (b[off] == 'e') { /* the client's stdin ended: so does the container's (not a pty's) */
      if (masterfd < 0 && stdinw >= 0) {
        close(stdinw);
        stdinw = -1;
        if (handoff >= 0) { char x = 'x'; if (send(handoff, &x, 1, MSG_DONTWAIT) < 0) {} }
      }
      off += 1;
      continue;
    }
    if (b[off] != 'd') { drop_client(i); return; }
    if (left < 3) break;
    unsigned len = (unsigned)(b[off + 1] << 8 | b[off + 2]);
    if (len > sizeof clients[i].out) { drop_client(i); return; }
    if (left < 3 + (int)len) break;
    memcpy(clients[i].out, b + off + 3, len);
    clients[i].olen = (int)len;
    off += 3 + (int)len;
    flush_client(i);
  }
  memmove(b, b + off, (size_t)(clients[i].len - off));
  clients[i].len -= off;
}

static void client_in(int i) {
  ssize_t n = read(clients[i].fd, clients[i].in + clients[i].len, sizeof clients[i].in - (size_t)clients[i].len);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) { drop_client(i); return; }
  if (n < 0) return;
  clients[i].len += (int)n;
  client_parse(i);
}

/* the pty's output, to stdout.log (as Docker: a terminal has one stream); false at its end */
static int pty_out(void) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(masterfd, buf, sizeof buf);
    if (n > 0) {
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(outfd, buf + off, (size_t)(n - off));
        if (w <= 0) { if (w < 0 && errno == EINTR) continue; break; }
        off += w;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
    return 0; /* EIO: every process holding the pty's other side has gone */
  }
}

/* copies what is readable; on EOF shuts the other side's write half, closes when both are done */
static void relay(int i, int from, int to) {
  char buf[65536];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0) { close(conns[i].a); close(conns[i].b); conns[i].a = conns[i].b = 0; return; }
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, n - off);
    if (w <= 0) { if (errno == EINTR) continue; break; }
    off += w;
  }
}

static void start_health(void) {
  char out[4096];
  path(out, sizeof out, "health.out");
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  char *args[8 + 64];
  int k = 0;
  args[k++] = (char *)runtime; args[k++] = "--root"; args[k++] = (char *)rtroot; args[k++] = "exec"; args[k++] = (char *)id;
  for (int i = 0; i < hargc && k < 70; i++) args[k++] = hargv[i];
  args[k] = NULL;
  hpid = spawn_runtime(args, fd, fd);
  close(fd);
  hdeadline = now_ms() + h_timeout;
}

static void health_done(int st) {
  char p[4096];
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  hpid = 0;
  path(p, sizeof p, "health.out");
  FILE *f = fopen(p, "r");
  size_t n = f ? fread(hout, 1, sizeof hout - 1, f) : 0;
  hout[n] = 0;
  if (f) fclose(f);
  hlast = code;
  if (code == 0) { streak = 0; strcpy(health, "healthy"); }
  else if (now_ms() - tstart >= h_start) {
    streak++;
    if (streak >= h_retries) strcpy(health, "unhealthy");
  }
  write_state("running", 0, 0);
}

static int stop_requested(void) {
  char p[4096];
  path(p, sizeof p, "stop-requested");
  return access(p, F_OK) == 0;
}

static int wants_restart(int code) {
  if (stop_requested()) return 0;
  if (strcmp(policy, "always") == 0 || strcmp(policy, "unless-stopped") == 0) return 1;
  if (strcmp(policy, "on-failure") == 0) return code != 0 && (maxrestarts == 0 || restarts < maxrestarts);
  return 0;
}

static void report(const char *line) {
  if (statusfd < 0) return;
  if (write(statusfd, line, strlen(line)) < 0) {}
  close(statusfd);
  statusfd = -1;
}

static const char *lognames[2] = {"stdout.log", "stderr.log"}, *idxnames[2] = {"stdout.idx", "stderr.idx"};

/* NAME.k → NAME.k+1 for k = maxfile-2 … 1 (the oldest falls off), then NAME → NAME.1 is made by
   the caller. */
static void shift(const char *name) {
  char a[4200], b[4200];
  for (int k = maxfile - 2; k >= 1; k--) {
    snprintf(a, sizeof a, "%s/%s.%d", dir, name, k);
    snprintf(b, sizeof b, "%s/%s.%d", dir, name, k + 1);
    rename(a, b);
  }
}

/* Copies what log i holds to log.1 (via a temp name), then truncates it. Bytes the container
   appends while we copy are copied too (we copy until the size stops moving); only a write landing
   between the last size check and the truncate (a few microseconds) can be lost. */
static void rotate(int i) {
  char p[4096], one[4200], tmp[4200];
  path(p, sizeof p, lognames[i]);
  int w = open(p, O_WRONLY | O_CLOEXEC);
  if (w < 0) return;
  if (maxfile > 1) {
    snprintf(one, sizeof one, "%s.1", p);
    snprintf(tmp, sizeof tmp, "%s.1.tmp", p);
    shift(lognames[i]); /* the oldest goes first, so the copy never adds a file beyond max-file */
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) { close(w); return; }
    off_t off = 0;
    struct stat st;
    while (fstat(logfd[i], &st) == 0 && st.st_size > off && off < 4 * maxsize + (1 << 20)) { /* bounded: a writer faster than a copy cannot hold us here */
      ssize_t n = copy_file_range(logfd[i], &off, out, NULL, (size_t)(st.st_size - off), 0);
      if (n <= 0) {
        char buf[65536];
        ssize_t r = pread(logfd[i], buf, sizeof buf, off);
        if (r <= 0 || write(out, buf, (size_t)r) != r) break;
        off += r;
      }
    }
    if (ftruncate(w, 0) < 0) {}
    close(out);
    rename(tmp, one);
    /* the time index goes with it: its offsets are offsets in the file just rotated */
    char ip[4096], ione[4200];
    path(ip, sizeof ip, idxnames[i]);
    snprintf(ione, sizeof ione, "%s.1", ip);
    shift(idxnames[i]);
    rename(ip, ione);
  } else {
    if (ftruncate(w, 0) < 0) {}
    char ip[4096];
    path(ip, sizeof ip, idxnames[i]);
    unlink(ip);
  }
  close(w);
  char ip[4096];
  path(ip, sizeof ip, idxnames[i]);
  if (idxfd[i] >= 0) close(idxfd[i]);
  idxfd[i] = open(ip, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  logsize[i] = 0;
}

static void index_logs(void) {
  for (int i = 0; i < 2; i++) {
    struct stat st;
    if (logfd[i] < 0 || fstat(logfd[i], &st) < 0) continue;
    /* rotate at 15/16: the last sixteenth is headroom for writes made before a busy machine woke us */
    if (maxsize > 0 && st.st_size >= maxsize - maxsize / 16) {
      rotate(i);
      if (fstat(logfd[i], &st) < 0) continue;
    }
    if (st.st_size <= logsize[i]) continue;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    char line[64];
    int n = snprintf(line, sizeof line, "%lld %lld%09ld\n", (long long)st.st_size, (long long)t.tv_sec, t.tv_nsec);
    if (write(idxfd[i], line, n) < 0) {}
    logsize[i] = st.st_size;
  }
}

static void watch_logs(void) {
  const char **names = lognames, **idx = idxnames;
  const char *ms = getenv("TSD_LOG_MAX_SIZE"), *mf = getenv("TSD_LOG_MAX_FILE");
  if (ms && *ms) maxsize = atoll(ms);
  if (mf && *mf) maxfile = atoi(mf) < 1 ? 1 : atoi(mf);
  ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  for (int i = 0; i < 2; i++) {
    char p[4096];
    path(p, sizeof p, names[i]);
    logfd[i] = open(p, O_RDONLY | O_CREAT | O_CLOEXEC, 0640);
    if (ifd >= 0) inotify_add_watch(ifd, p, IN_MODIFY);
    path(p, sizeof p, idx[i]);
    idxfd[i] = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st;
    logsize[i] = logfd[i] >= 0 && fstat(logfd[i], &st) == 0 ? st.st_size : 0;
  }
}

/* SIGTERM or SIGINT to the supervisor (a shutdown, an impatient user) stops the container the
   way `tsd-run stop` does: its stop signal, and no restart; we go on to record its exit */
static void forward_stop(void) {
  char p[4096];
  path(p, sizeof p, "stop-requested");
  int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (fd >= 0) close(fd);
  const char *sig = getenv("TSD_STOP_SIGNAL");
  char *args[] = {(char *)runtime, "--root", (char *)rtroot, "kill", (char *)id, (char *)(sig && *sig ? sig : "SIGTERM"), NULL};
  if (cpid > 0 && !exited) spawn_runtime(args, -1, -1); /* reaped by the loop like any child */
}

/* the supervision loop; `adopt`: the container already runs (the worker died), take it over */
static int supervise(int adopt, int sfd) {
  watch_logs();
  bind_attach(); /* before "ok" is reported: a foreground -i run attaches as soon as it reads it */
  if (tty) {
    char o[4096];
    path(o, sizeof o, "stdout.log");
    outfd = open(o, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  }
  if (adopt) {
    load_counter();
    cpid = read_pid();
    tstart = now_ms();
    if (cpid <= 0 || kill(cpid, 0) < 0) {
      /* it was reaped by the worker before it died, or never started */
      return 0;
    }
  } else if (bind_ports() < 0 || (save_ports(), 0)) {
    char msg[300];
    snprintf(msg, sizeof msg, "fail %s\n", portfail);
    close_ports();
    write_state("exited", 125, 0);
    report(msg);
    return 1;
  } else if (start_container() < 0) {
    close_ports();
    write_state("exited", 125, 0);
    report("fail\n");
    return 1;
  }
  if (hargc > 0) { strcpy(health, "starting"); hnext = now_ms() + h_interval; }
  write_state("running", 0, 0);
  char line[64];
  snprintf(line, sizeof line, "ok %d\n", (int)cpid);
  report(line);
  if (adopt) { load_ports(); bind_ports(); }
  enter_netns();
  index_logs();
  int ptyopen = masterfd >= 0;
  enum { NPF = 4 + MAXPORTS + 2 * MAXCONN + MAXUDP + MAXCLIENTS };
  for (;;) {
    struct pollfd pf[NPF];
    int map[NPF], n = 0, pending = 0;
    pf[n].fd = sfd; pf[n].events = POLLIN; map[n++] = -1;
    if (ifd >= 0) { pf[n].fd = ifd; pf[n].events = POLLIN; map[n++] = -2; }
    if (ptyopen) { pf[n].fd = masterfd; pf[n].events = POLLIN; map[n++] = -3; }
    if (attachfd >= 0) { pf[n].fd = attachfd; pf[n].events = POLLIN; map[n++] = -4; }
    for (int i = 0; i < MAXCLIENTS; i++) if (clients[i].fd > 0) {
      if (clients[i].olen > 0) pending = 1;
      pf[n].fd = clients[i].fd; pf[n].events = clients[i].olen > 0 ? 0 : POLLIN; map[n++] = 5000 + i;
    }
    if (pending && input_fd() >= 0) { pf[n].fd = input_fd(); pf[n].events = POLLOUT; map[n++] = -5; }
    for (int i = 0; i < nports; i++) if (ports[i].fd > 0) { pf[n].fd = ports[i].fd; pf[n].events = POLLIN; map[n++] = 1000 + i; }
    for (int i = 0; i < MAXCONN; i++) if (conns[i].a > 0) {
      pf[n].fd = conns[i].a; pf[n].events = POLLIN; map[n++] = 2000 + i;
      pf[n].fd = conns[i].b; pf[n].events = POLLIN; map[n++] = 3000 + i;
    }
    for (int i = 0; i < MAXUDP; i++) if (udps[i].fd > 0) { pf[n].fd = udps[i].fd; pf[n].events = POLLIN; map[n++] = 4000 + i; }
    long long t = now_ms(), wake = udp_expire(t);
    if (hargc > 0 && !exited) {
      long long h = hpid ? hdeadline : hnext;
      if (wake < 0 || h < wake) wake = h;
    }
    int timeout = wake < 0 ? -1 : (int)(wake > t ? wake - t : 0);
    int r = poll(pf, n, timeout);
    if (r < 0 && errno != EINTR) return 1;
    for (int k = 0; r > 0 && k < n; k++) {
      if (!(pf[k].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) continue;
      if (map[k] == -2) {
        char ev[4096];
        while (read(ifd, ev, sizeof ev) > 0) {}
        index_logs();
      } else if (map[k] == -1) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si)
          if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) forward_stop();
      } else if (map[k] == -3) ptyopen = pty_out();
      else if (map[k] == -4) accept_client();
      else if (map[k] == -5) {
        for (int i = 0; i < MAXCLIENTS; i++) if (clients[i].fd > 0 && clients[i].olen > 0) { flush_client(i); if (clients[i].olen == 0) client_parse(i); }
      }
      else if (map[k] >= 5000) { int i = map[k] - 5000; if (clients[i].fd > 0) client_in(i); }
      else if (map[k] >= 4000) { int i = map[k] - 4000; if (udps[i].fd > 0) udp_out(i); }
      else if (map[k] >= 3000) { int i = map[k] - 3000; if (conns[i].a > 0) relay(i, conns[i].b, conns[i].a); }
      else if (map[k] >= 2000) { int i = map[k] - 2000; if (conns[i].a > 0) relay(i, conns[i].a, conns[i].b); }
      else if (map[k] >= 1000) {
        int i = map[k] - 1000;
        if (ports[i].udp) udp_in(i);
        else accept_conn(ports[i].fd, ports[i].cport);
      }
    }
    /* reap: the container, a health check, or any orphan reparented to us */
    for (;;) {
      int st;
      pid_t p = waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == cpid) { exited = 1; wstatus = st; }
      else if (p == hpid) health_done(st);
    }
    if (hpid && !exited && now_ms() >= hdeadline) { kill(hpid, SIGKILL); }
    if (hargc > 0 && !hpid && !exited && now_ms() >= hnext) { start_health(); hnext = now_ms() + h_interval; }
    if (!exited) continue;
    if (ptyopen) pty_out(); /* what the container wrote last */
    index_logs();
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    int oom = oom_killed();
    close_conns();
    if (hostns >= 0) setns(hostns, CLONE_NEWNET);
    if (hpid) { kill(hpid, SIGKILL); wait_for(hpid); hpid = 0; }
    delete_container();
    if (wants_restart(code)) {
      write_state("restarting", code, oom);
      long delay = 100L << (restarts < 6 ? restarts : 6);
      struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
      nanosleep(&ts, NULL);
      restarts++;
      if (stop_requested() || start_container() < 0) { close_ports(); write_state("exited", code, oom); break; }
      ptyopen = masterfd >= 0;
      write_state("running", 0, 0);
      enter_netns();
      continue;
    }
    close_ports();
    write_state("exited", code, oom);
    break;
  }
  char rootfs[4096];
  path(rootfs, sizeof rootfs, "bundle/rootfs");
  umount2(rootfs, MNT_DETACH);
  /* a foreground --rm run (-it, -p, -a) starts us without AUTOREMOVE so it can read the exit code;
     when its user detached, it left this marker: the removal is ours then. state.json says
     "exited" before we look, so a detach that came later sees that and removes the container itself */
  char mark[4096];
  path(mark, sizeof mark, "autoremove");
  if (autoremove || access(mark, F_OK) == 0) {
    char *args[] = {"rm", "-rf", (char *)dir, NULL};
    wait_for(spawn_runtime(args, -1, -1));
  }
  return 0;
}

/* the watchdog's copy of what the worker handed over: the latest of each kind ('x': stdin closed) */
static void keep_fd(char kind, int fd, int *kept_m, int *kept_i) {
  int *slot = kind == 'm' ? kept_m : kept_i;
  if (*slot >= 0) close(*slot);
  *slot = kind == 'x' ? -1 : fd;
  if (kind == 'x' && fd >= 0) close(fd);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  remove(p);
  return 0;
}

static int rootfs_main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: tsd-supervisor rootfs TARGET DATA VOLATILE\n"); return 2; }
  const char *target = argv[2], *data = argv[3];
  signal(SIGINT, SIG_IGN); signal(SIGTERM, SIG_IGN); signal(SIGHUP, SIG_IGN); signal(SIGQUIT, SIG_IGN); signal(SIGPIPE, SIG_IGN);
  int rc = -1;
  if (strcmp(argv[4], "1") == 0) {
    size_t n = strlen(data) + 16;
    char *v = malloc(n);
    if (v) { snprintf(v, n, "%s,volatile", data); rc = mount("overlay", target, "overlay", 0, v); free(v); }
  }
  if (rc < 0) rc = mount("overlay", target, "overlay", 0, data);
  if (rc < 0) { dprintf(1, "fail %s\n", strerror(errno)); return 1; }
  if (write(1, "ok\n", 3) < 0) {}
  char cmd[4200];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(0, cmd + len, sizeof cmd - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) len += (size_t)n;
    if (n > 0 && memchr(cmd, '\n', len) == NULL && len < sizeof cmd - 1) continue;
    break;
  }
  cmd[len] = 0;
  if (umount2(target, 0) < 0) umount2(target, MNT_DETACH);
  if (cmd[0] == 'r' && cmd[1] == ' ') {
    char *nl = strchr(cmd, '\n');
    if (nl) *nl = 0;
    nftw(cmd + 2, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "rootfs") == 0) return rootfs_main(argc, argv);
  if (argc < 14) { fprintf(stderr, "usage: tsd-supervisor DIR RUNTIME ROOT ID MEMCG POLICY MAX RM HI HT HR HS NPORTS [PORTS] [HEALTH…]\n"); return 2; }
  dir = argv[1]; runtime = argv[2]; rtroot = argv[3]; id = argv[4]; memcg = argv[5]; policy = argv[6];
  maxrestarts = atoi(argv[7]); autoremove = atoi(argv[8]);
  h_interval = atol(argv[9]); h_timeout = atol(argv[10]); h_retries = atol(argv[11]); h_start = atol(argv[12]);
  nports = atoi(argv[13]);
  if (nports > MAXPORTS || 14 + nports > argc) return 2;
  for (int i = 0; i < nports; i++) {
    char *s = argv[14 + i];
    if (*s == '?') { ports[i].optional = 1; s++; } /* [::] for a -p without an IP: skipped without IPv6 */
    char *proto = strrchr(s, '/');
    if (proto) { ports[i].udp = strcmp(proto, "/udp") == 0; *proto = 0; }
    char *c1 = strrchr(s, ':');
    if (!c1) return 2;
    *c1 = 0;
    char *c2 = strrchr(s, ':');
    if (!c2) return 2;
    *c2 = 0;
    snprintf(ports[i].ip, sizeof ports[i].ip, "%s", s);
    ports[i].hport = atoi(c2 + 1);
    ports[i].any = ports[i].hport == 0;
    ports[i].cport = atoi(c1 + 1);
  }
  hargc = argc - 14 - nports;
  hargv = argv + 14 + nports;
  if (fcntl(3, F_GETFD) >= 0) { statusfd = 3; fcntl(3, F_SETFD, FD_CLOEXEC); }
  const char *te = getenv("TSD_TTY"), *ie = getenv("TSD_STDIN");
  tty = te && strcmp(te, "1") == 0;
  keepstdin = ie && strcmp(ie, "1") == 0;
  int pair[2] = {-1, -1};
  if ((tty || keepstdin) && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0) pair[0] = pair[1] = -1;
  hostns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGPIPE);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  char pidfile[4096], tmp[4096];
  pid_t worker = fork();
  if (worker == 0) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_PDEATHSIG, 0);
    if (pair[0] >= 0) close(pair[0]);
    handoff = pair[1];
    return supervise(0, sfd);
  }
  if (pair[1] >= 0) close(pair[1]);
  /* the watchdog: keeps no status pipe, waits for the worker; takes over if it is killed */
  if (statusfd >= 0) { close(statusfd); statusfd = -1; }
  path(pidfile, sizeof pidfile, "supervisor.pid");
  snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
  FILE *f = fopen(tmp, "w");
  if (f) { fprintf(f, "%d %d\n", (int)worker, (int)getpid()); fclose(f); rename(tmp, pidfile); }
  /* keeps the latest pty master and stdin pipe the worker handed over (closing older ones), so
     they outlive the worker; reaps */
  int kept_m = -1, kept_i = -1, hup = pair[0] < 0;
  for (;;) {
    struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = pair[0], .events = POLLIN}};
    if (poll(pf, hup ? 1 : 2, -1) < 0 && errno != EINTR) break;
    if (!hup && pf[1].revents) {
      char kind;
      int fd;
      while ((fd = recv_fd(pair[0], &kind, MSG_DONTWAIT)) != -1) keep_fd(kind, fd, &kept_m, &kept_i);
      if (pf[1].revents & (POLLHUP | POLLERR)) hup = 1;
    }
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == sizeof si) {}
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
      if (p != worker) continue;
      if (WIFEXITED(st)) { unlink(pidfile); return WEXITSTATUS(st); }
      /* the worker was killed: the container (if still running) is now our child */
      if (!hup) {
        char kind;
        int fd;
        while ((fd = recv_fd(pair[0], &kind, MSG_DONTWAIT)) != -1) keep_fd(kind, fd, &kept_m, &kept_i);
      }
      if (pair[0] >= 0) close(pair[0]);
      masterfd = kept_m;
      stdinw = kept_i;
      if (masterfd >= 0) fcntl(masterfd, F_SETFL, fcntl(masterfd, F_GETFL) | O_NONBLOCK);
      if (stdinw >= 0) fcntl(stdinw, F_SETFL, fcntl(stdinw, F_GETFL) | O_NONBLOCK);
      f = fopen(tmp, "w");
      if (f) { fprintf(f, "%d\n", (int)getpid()); fclose(f); rename(tmp, pidfile); }
      int rc = supervise(1, sfd);
      unlink(pidfile);
      return rc;
    }
    if (p < 0 && errno == ECHILD) break;
  }
  return 0;
}
