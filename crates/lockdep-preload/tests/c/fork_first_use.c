/* A thread's first lock made while another thread is inside fork(): this program's own
 * prepare handler (which runs before the validator's, registered earlier) lets the thread go
 * and waits for it. A thread caught inside a one-time initialisation at the instant the process
 * is copied leaves the child an initialisation begun by a thread it does not have, which the
 * child would wait for forever at its first lock; the interposer makes the validator at load
 * time so that no such initialisation is left for a first lock. The child must lock and exit;
 * the parent gives it 10 s, then kills it and fails. Exit status 0 only if the child exited
 * with 0. */
#include "shapes.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t child_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t child_b = PTHREAD_MUTEX_INITIALIZER;
static atomic_int go;

static void *first(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		usleep(100);
	lock_unlock_2(&a, &b);
	return NULL;
}

static void prepare(void)
{
	atomic_store(&go, 1);
	usleep(100000);
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, first, NULL);
	pthread_atfork(prepare, NULL, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		lock_unlock_2(&child_a, &child_b);
		_exit(0);
	}
	int status = 0, exited = 0;
	for (int i = 0; i < 1000 && !exited; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			exited = 1;
		else
			usleep(10000);
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		printf("the child hung at its first lock\n");
	}
	pthread_join(t, NULL);
	int ok = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	printf("child %s\n", ok ? "exited" : "failed");
	return ok ? 0 : 1;
}
