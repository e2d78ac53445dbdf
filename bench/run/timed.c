/* bench/run's meter: runs a command, waits for it with wait4, and prints to stderr
   "WALL_US USER_US SYS_US STATUS": wall time and the CPU time (user, system) of the whole process
   tree it waited for (the kernel adds a reaped child's usage to its parent's children's usage, so
   runc's, mount's and the container's own processes count when they were waited for). */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pid_t p = fork();
  if (p == 0) { execvp(argv[1], argv + 1); _exit(127); }
  int st = 0;
  struct rusage ru;
  if (wait4(p, &st, 0, &ru) < 0) return 2;
  clock_gettime(CLOCK_MONOTONIC, &b);
  long long wall = (b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000;
  long long user = ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec, sys = ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
  fprintf(stderr, "%lld %lld %lld %d\n", wall, user, sys, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return 0;
}
