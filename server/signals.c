/*
 * signals.c — how `cofi serve` takes its signals: SIGHUP (reload), SIGTERM
 * and SIGINT (stop), the lease-break signal (SIGRTMIN+1) and SIGIO (what
 * the kernel sends instead when the real-time queue is full).
 *
 * The design, and why. A process-directed signal goes to any one thread
 * that does not block it. Blocking these signals with pthread_sigmask
 * before starting threads is not enough: the mask is per thread, and
 * libraries start threads before main runs (OpenBLAS starts its pool when
 * the library is loaded; an OpenMP runtime may too), with the default
 * mask. Any such thread could take SIGTERM or the lease signal with its
 * default action, which ends the process (exit 143, or "Real-time signal
 * 1"). A disposition, unlike a mask, is process-wide: once a handler is
 * installed, every thread, whoever created it and whenever, runs the
 * handler instead of the default action. So real handlers are installed,
 * and they do only what is async-signal-safe: count the signal in a
 * lock-free atomic and write one byte to a non-blocking self-pipe. The
 * signal loop (cofi_server_run) sleeps in poll() on the pipe and does the
 * real work (reload, lease break, drain) in an ordinary thread context.
 *
 * Counting before writing means nothing is lost even if the pipe were
 * full: the pipe is then non-empty, so the loop wakes and reads every
 * counter. Signals of one kind that arrive together are merged (300
 * SIGHUPs sent while a reload runs give one more reload, not 300).
 * SA_RESTART keeps the system calls of interrupted threads going;
 * libmicrohttpd's epoll_wait, which is never restarted, retries on EINTR.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int pipe_fd[2] = {-1, -1};
static atomic_uint n_hup, n_term, n_lease;
static atomic_int term_signo;

static void on_signal(int sig) {
  int saved = errno;
  if (sig == SIGHUP) {
    atomic_fetch_add(&n_hup, 1);
  } else if (sig == SIGTERM || sig == SIGINT) {
    atomic_store(&term_signo, sig);
    atomic_fetch_add(&n_term, 1);
  } else {
    atomic_fetch_add(&n_lease, 1); /* the lease signal or SIGIO */
  }
  char b = 0;
  ssize_t rc = write(pipe_fd[1], &b, 1); /* EAGAIN when full: already awake */
  (void)rc;
  errno = saved;
}

int srv_signals_install(int lease_sig) {
  if (pipe_fd[0] < 0 && pipe2(pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0) return errno;
  int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGIO, lease_sig};
  size_t n = sizeof sigs / sizeof sigs[0] - (lease_sig > 0 ? 0 : 1);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < n; i++) {
    sigaddset(&sa.sa_mask, sigs[i]); /* one handler at a time per thread */
    sigaddset(&set, sigs[i]);
  }
  for (size_t i = 0; i < n; i++)
    if (sigaction(sigs[i], &sa, NULL) != 0) return errno;
  /* A mask inherited across exec (a parent that blocked SIGTERM) would
   * leave the signals pending forever if every thread had it: this thread
   * at least takes them. */
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  return 0;
}

bool srv_signals_wait(int timeout_ms, srv_signal_events *ev) {
  memset(ev, 0, sizeof *ev);
  if (pipe_fd[0] < 0) return false;
  struct pollfd p = {pipe_fd[0], POLLIN, 0};
  int rc = poll(&p, 1, timeout_ms);
  if (rc > 0) {
    char buf[256];
    while (read(pipe_fd[0], buf, sizeof buf) > 0) {
    }
  }
  /* Read after draining the pipe: a signal counted after this is followed
   * by a byte that wakes the next wait. */
  ev->hup = atomic_exchange(&n_hup, 0);
  ev->lease = atomic_exchange(&n_lease, 0);
  ev->term = atomic_exchange(&n_term, 0);
  ev->term_sig = ev->term ? atomic_load(&term_signo) : 0;
  return ev->hup || ev->lease || ev->term;
}
