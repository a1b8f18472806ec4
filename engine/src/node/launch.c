/* SPDX-License-Identifier: MIT */
/* launch.c: start every node of a deployment as a process; stream, supervise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "node/fed.h"

typedef struct lnode {
	const char *name;
	pid_t pid;
	int fd;         /* read end of its stdout+stderr, -1 when closed */
	int status;
	int exited;
	char buf[4096]; /* partial line */
	size_t len;
} lnode;

static volatile sig_atomic_t launch_stop;

static void
on_signal(int sig)
{
	launch_stop = sig;
}

/* Starts argv with its output on a pipe. A node dies with the launcher
 * (PR_SET_PDEATHSIG: even if the launcher is killed with SIGKILL, no
 * node lives on as an orphan); keep_fd stays open in it. */
static int
spawn(lnode *n, char **argv, int keep_fd, fm_error *err)
{
	pid_t parent = getpid();
	int p[2];
	if (pipe(p) != 0) {
		return fm_error_set(err, FM_ESYSERR | errno, "pipe: %s",
		    strerror(errno));
	}
	/* vfork: no copy of the launcher's page tables for each of a
	 * hundred nodes (a fork costs twice as much on virtual machines).
	 * Until execv the child shares the launcher's memory, so it makes
	 * only system calls that touch none of it. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	static const char fail[] = ": cannot run it (exec failed)\n";
	pid_t pid = vfork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return fm_error_set(err, FM_ESYSERR | errno, "fork: %s",
		    strerror(errno));
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) { /* the launcher died before prctl */
			_exit(1);
		}
		sigaction(SIGPIPE, &dfl, NULL);
		if (keep_fd >= 0) {
			fcntl(keep_fd, F_SETFD, 0);
		}
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		(void)!write(STDERR_FILENO, argv[0], strlen(argv[0]));
		(void)!write(STDERR_FILENO, fail, sizeof fail - 1);
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFD, FD_CLOEXEC);
	fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK); /* never block in pump */
	n->pid = pid;
	n->fd = p[0];
	return FM_OK;
}

/* Prints whole lines from buf with the node's prefix. */
static void
emit(lnode *n, int flush)
{
	size_t start = 0;
	for (size_t i = 0; i < n->len; i++) {
		if (n->buf[i] == '\n') {
			printf("[%s] %.*s\n", n->name, (int)(i - start),
			    n->buf + start);
			start = i + 1;
		}
	}
	if (flush && start < n->len) {
		printf("[%s] %.*s\n", n->name, (int)(n->len - start),
		    n->buf + start);
		start = n->len;
	} else if (start == 0 && n->len == sizeof n->buf) {
		printf("[%s] %.*s\n", n->name, (int)n->len, n->buf);
		start = n->len; /* an overlong line: print in pieces */
	}
	memmove(n->buf, n->buf + start, n->len - start);
	n->len -= start;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* nobody reads our output (`| head`): stop the deployment
		 * rather than run it unseen */
		launch_stop = SIGPIPE;
		clearerr(stdout);
	}
}

static void
pump(lnode *n)
{
	ssize_t r = read(n->fd, n->buf + n->len, sizeof n->buf - n->len);
	if (r > 0) {
		n->len += (size_t)r;
		emit(n, 0);
	} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
		emit(n, 1);
		close(n->fd);
		n->fd = -1;
	}
}

static void
reap(lnode *nodes, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!nodes[i].exited && nodes[i].pid > 0 &&
		    waitpid(nodes[i].pid, &nodes[i].status, WNOHANG) ==
		        nodes[i].pid) {
			nodes[i].exited = 1;
			if (i > 0 && !(WIFEXITED(nodes[i].status) &&
			                 WEXITSTATUS(nodes[i].status) == 0)) {
				fm_log(FM_LOG_WARN, "FM-LAUNCH", "node %s ended "
				    "(status %d)", nodes[i].name,
				    nodes[i].status);
			}
		}
	}
}

/* Streams output until the server has exited and its pipe is drained, or
 * a signal asks to stop. */
static void
supervise(lnode *nodes, uint32_t n)
{
	struct pollfd pf[256];
	while (!launch_stop && !(nodes[0].exited && nodes[0].fd < 0)) {
		uint32_t k = 0;
		for (uint32_t i = 0; i < n && k < 256; i++) {
			if (nodes[i].fd >= 0) {
				pf[k++] = (struct pollfd) { nodes[i].fd, POLLIN, 0 };
			}
		}
		if (poll(pf, k, 200) > 0) {
			for (uint32_t i = 0, j = 0; i < n && j < k; i++) {
				if (nodes[i].fd >= 0 && pf[j++].revents) {
					pump(&nodes[i]);
				}
			}
		}
		reap(nodes, n);
	}
}

/* Gives the clients grace seconds to finish, then SIGTERM, then SIGKILL. */
static void
stop_all(lnode *nodes, uint32_t n, double grace)
{
	double deadline = fmi_now() + grace;
	int sent = 0;
	for (;;) {
		reap(nodes, n);
		uint32_t alive = 0;
		for (uint32_t i = 0; i < n; i++) {
			if (nodes[i].fd >= 0) {
				pump(&nodes[i]);
			}
			alive += !nodes[i].exited && nodes[i].pid > 0;
		}
		if (alive == 0) {
			return;
		}
		if (fmi_now() > deadline && sent < 2) {
			for (uint32_t i = 0; i < n; i++) {
				if (!nodes[i].exited && nodes[i].pid > 0) {
					kill(nodes[i].pid, sent ? SIGKILL : SIGTERM);
				}
			}
			sent++;
			deadline = fmi_now() + 5;
		}
		usleep(20000);
	}
}

int
fmi_launch(const char *const *names, uint32_t n, fmi_launch_argv_fn argv_for,
    void *ud, int server_fd, double grace, int *server_status, fm_error *err)
{
	struct sigaction sa, old_int, old_term, old_hup, old_pipe, ign;
	lnode *nodes = calloc(n, sizeof *nodes);
	int rv = nodes ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	launch_stop = 0;
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sigaction(SIGPIPE, &ign, &old_pipe); /* a closed stdout is seen in emit */
	for (uint32_t i = 0; rv == FM_OK && i < n; i++) {
		nodes[i].name = names[i];
		nodes[i].fd = -1;
		rv = spawn(&nodes[i], argv_for(ud, i, names[i]),
		    i == 0 ? server_fd : -1, err);
	}
	if (rv == FM_OK) {
		supervise(nodes, n);
	}
	if (launch_stop == SIGPIPE) {
		fm_log(FM_LOG_WARN, "FM-LAUNCH", "output closed: stopping "
		    "every node");
		rv = fm_error_set(err, FM_ECLOSED, "the output was closed, so "
		    "every node was stopped");
	} else if (launch_stop) {
		fm_log(FM_LOG_WARN, "FM-LAUNCH", "stopping every node (signal %d)",
		    (int)launch_stop);
		rv = fm_error_set(err, FM_ECLOSED, "interrupted by signal %d",
		    (int)launch_stop);
	}
	stop_all(nodes, n, launch_stop || rv != FM_OK ? 0 : grace);
	*server_status = nodes ? nodes[0].status : -1;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	free(nodes);
	return rv;
}
