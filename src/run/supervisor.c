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
 *  - applies the restart policy, runs the HEALTHCHECK with `RUNTIME exec`, publishes ports;
 *  - forwards SIGTERM/SIGINT it receives to the container as its stop signal ($TSD_STOP_SIGNAL);
 *  - runs as two processes, a watchdog and a worker, both subreapers: `kill -9` of either one
 *    leaves the other to reap the container and record its exit code.
 * Usage: tsd-supervisor DIR RUNTIME RUNTIME_ROOT ID MEMCG POLICY MAX AUTOREMOVE
 *                       HEALTH_INTERVAL_MS HEALTH_TIMEOUT_MS HEALTH_RETRIES HEALTH_START_MS
 *                       NPORTS [IP:HOST:CONTAINER…] [HEALTH ARGV…]
 * fd 3, when open, receives "ok PID\n" or "fail\n" once the first start is known, then closes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>

#define MAXPORTS 16
#define MAXCONN 64

static const char *dir, *runtime, *rtroot, *id, *memcg, *policy;
static int maxrestarts, autoremove, nports, hargc;
static long h_interval, h_timeout, h_retries, h_start;
static char **hargv;
static struct { char ip[64]; int hport, cport, fd; } ports[MAXPORTS];
static struct { int a, b; } conns[MAXCONN];
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

/* runs RUNTIME with args; stdout/stderr to the logs (so a runtime error is in the log too) */
static pid_t spawn_runtime(char *const args[], int out, int err) {
  pid_t p = fork();
  if (p == 0) {
    if (hostns >= 0) setns(hostns, CLONE_NEWNET);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0);
    dup2(out >= 0 ? out : nul, 1);
    dup2(err >= 0 ? err : nul, 2);
    execvp(args[0], args);
    _exit(127);
  }
  return p;
}

static int wait_for(pid_t p) {
  int st = 0;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  return st;
}

static int start_container(void) {
  char pidfile[4096], bundle[4096], log[4096], o[4096], e[4096];
  path(pidfile, sizeof pidfile, "pid");
  path(bundle, sizeof bundle, "bundle");
  path(log, sizeof log, "runtime.log");
  path(o, sizeof o, "stdout.log");
  path(e, sizeof e, "stderr.log");
  unlink(pidfile);
  int out = open(o, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int err = open(e, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  char *args[] = {(char *)runtime, "--root", (char *)rtroot, "--log", log, "--log-format", "json", "run", "-d", "--pid-file", pidfile, "--bundle", bundle, (char *)id, NULL};
  /* the fds must survive exec in the child: clear close-on-exec there via dup2 (dup2 clears it) */
  int st = wait_for(spawn_runtime(args, out, err));
  close(out);
  close(err);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
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
}

/* listeners are bound in the host's namespace; then we enter the container's, where connect() goes */
static void bind_ports(void) {
  for (int i = 0; i < nports; i++) {
    if (ports[i].fd > 0) continue;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ports[i].hport)};
    inet_pton(AF_INET, ports[i].ip, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) {
      fprintf(stderr, "tsd-supervisor: publish %s:%d: %s\n", ports[i].ip, ports[i].hport, strerror(errno));
      close(fd);
      fd = -1;
    }
    ports[i].fd = fd;
  }
}

static void enter_netns(void) {
  if (nports == 0 || cpid <= 0) return;
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/net", (int)cpid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) { setns(fd, CLONE_NEWNET); close(fd); }
}

static void accept_conn(int lfd, int cport) {
  int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0) return;
  int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(cport)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (b < 0 || connect(b, (struct sockaddr *)&to, sizeof to) < 0) { close(a); if (b >= 0) close(b); return; }
  for (int i = 0; i < MAXCONN; i++)
    if (conns[i].a == 0) { conns[i].a = a; conns[i].b = b; return; }
  close(a);
  close(b);
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
    if (maxsize > 0 && st.st_size >= maxsize) {
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
  if (adopt) {
    load_counter();
    cpid = read_pid();
    tstart = now_ms();
    if (cpid <= 0 || kill(cpid, 0) < 0) {
      /* it was reaped by the worker before it died, or never started */
      return 0;
    }
  } else if (start_container() < 0) {
    write_state("exited", 125, 0);
    report("fail\n");
    return 1;
  }
  if (hargc > 0) { strcpy(health, "starting"); hnext = now_ms() + h_interval; }
  write_state("running", 0, 0);
  char line[64];
  snprintf(line, sizeof line, "ok %d\n", (int)cpid);
  report(line);
  bind_ports();
  enter_netns();
  index_logs();
  for (;;) {
    struct pollfd pf[2 + MAXPORTS + 2 * MAXCONN];
    int map[2 + MAXPORTS + 2 * MAXCONN], n = 0;
    pf[n].fd = sfd; pf[n].events = POLLIN; map[n++] = -1;
    if (ifd >= 0) { pf[n].fd = ifd; pf[n].events = POLLIN; map[n++] = -2; }
    for (int i = 0; i < nports; i++) if (ports[i].fd > 0) { pf[n].fd = ports[i].fd; pf[n].events = POLLIN; map[n++] = 1000 + i; }
    for (int i = 0; i < MAXCONN; i++) if (conns[i].a > 0) {
      pf[n].fd = conns[i].a; pf[n].events = POLLIN; map[n++] = 2000 + i;
      pf[n].fd = conns[i].b; pf[n].events = POLLIN; map[n++] = 3000 + i;
    }
    long long t = now_ms(), wake = -1;
    if (hargc > 0 && !exited) wake = hpid ? hdeadline : hnext;
    int timeout = wake < 0 ? -1 : (int)(wake > t ? wake - t : 0);
    int r = poll(pf, n, timeout);
    if (r < 0 && errno != EINTR) return 1;
    for (int k = 0; r > 0 && k < n; k++) {
      if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (map[k] == -2) {
        char ev[4096];
        while (read(ifd, ev, sizeof ev) > 0) {}
        index_logs();
      } else if (map[k] == -1) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si)
          if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) forward_stop();
      } else if (map[k] >= 3000) { int i = map[k] - 3000; if (conns[i].a > 0) relay(i, conns[i].b, conns[i].a); }
      else if (map[k] >= 2000) { int i = map[k] - 2000; if (conns[i].a > 0) relay(i, conns[i].a, conns[i].b); }
      else if (map[k] >= 1000) accept_conn(ports[map[k] - 1000].fd, ports[map[k] - 1000].cport);
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
      if (stop_requested() || start_container() < 0) { write_state("exited", code, oom); break; }
      write_state("running", 0, 0);
      enter_netns();
      continue;
    }
    write_state("exited", code, oom);
    break;
  }
  char rootfs[4096];
  path(rootfs, sizeof rootfs, "bundle/rootfs");
  umount2(rootfs, MNT_DETACH);
  if (autoremove) {
    char *args[] = {"rm", "-rf", (char *)dir, NULL};
    wait_for(spawn_runtime(args, -1, -1));
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 14) { fprintf(stderr, "usage: tsd-supervisor DIR RUNTIME ROOT ID MEMCG POLICY MAX RM HI HT HR HS NPORTS [PORTS] [HEALTH…]\n"); return 2; }
  dir = argv[1]; runtime = argv[2]; rtroot = argv[3]; id = argv[4]; memcg = argv[5]; policy = argv[6];
  maxrestarts = atoi(argv[7]); autoremove = atoi(argv[8]);
  h_interval = atol(argv[9]); h_timeout = atol(argv[10]); h_retries = atol(argv[11]); h_start = atol(argv[12]);
  nports = atoi(argv[13]);
  if (nports > MAXPORTS || 14 + nports > argc) return 2;
  for (int i = 0; i < nports; i++) {
    char *s = argv[14 + i], *c1 = strrchr(s, ':');
    if (!c1) return 2;
    *c1 = 0;
    char *c2 = strrchr(s, ':');
    if (!c2) return 2;
    *c2 = 0;
    snprintf(ports[i].ip, sizeof ports[i].ip, "%s", s);
    ports[i].hport = atoi(c2 + 1);
    ports[i].cport = atoi(c1 + 1);
  }
  hargc = argc - 14 - nports;
  hargv = argv + 14 + nports;
  if (fcntl(3, F_GETFD) >= 0) { statusfd = 3; fcntl(3, F_SETFD, FD_CLOEXEC); }
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
    return supervise(0, sfd);
  }
  /* the watchdog: keeps no status pipe, waits for the worker; takes over if it is killed */
  if (statusfd >= 0) { close(statusfd); statusfd = -1; }
  path(pidfile, sizeof pidfile, "supervisor.pid");
  snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
  FILE *f = fopen(tmp, "w");
  if (f) { fprintf(f, "%d %d\n", (int)worker, (int)getpid()); fclose(f); rename(tmp, pidfile); }
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) break;
    if (p != worker) continue;
    if (WIFEXITED(st)) { unlink(pidfile); return WEXITSTATUS(st); }
    /* the worker was killed: the container (if still running) is now our child */
    f = fopen(tmp, "w");
    if (f) { fprintf(f, "%d\n", (int)getpid()); fclose(f); rename(tmp, pidfile); }
    int rc = supervise(1, sfd);
    unlink(pidfile);
    return rc;
  }
  return 0;
}
