/*
 * What a fork costs against a clone that shares the parent's memory, on this
 * machine: the time from the call until the child has run (it writes a byte
 * to a pipe), averaged over 200 of each. The container init's fork into its
 * PID namespace (runtime/nsexec/nsexec.c, op_fork) uses the second.
 *
 *   gcc -O2 -static -o /tmp/forkcost bench/runtime/forkcost.c && /tmp/forkcost
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 200

static char stack[65536];
static int p[2];

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int child(void *arg)
{
	(void)arg;
	if (write(p[1], "x", 1) != 1)
		_exit(1);
	_exit(0);
}

int main(void)
{
	double fork_us = 0, vm_us = 0, t;
	char c;
	for (int i = 0; i < 2 * N; i++) {
		pid_t pid;
		if (pipe(p) < 0)
			return 1;
		t = now_us();
		if (i < N) {
			pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
			if (pid == 0)
				child(NULL);
		} else {
			pid = clone(child, stack + sizeof(stack), CLONE_VM | SIGCHLD, NULL);
		}
		if (pid < 0 || read(p[0], &c, 1) != 1)
			return 1;
		if (i < N)
			fork_us += now_us() - t;
		else
			vm_us += now_us() - t;
		waitpid(pid, NULL, 0);
		close(p[0]);
		close(p[1]);
	}
	printf("fork: %.0f us until the child ran; clone(CLONE_VM): %.0f us\n", fork_us / N, vm_us / N);
	return 0;
}
