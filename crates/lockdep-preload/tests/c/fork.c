/* 50 forks while another thread is inside the validator (it keeps making new dependencies between
 * 128 statically initialised mutexes, the validator's slow path: its graph lock, stack capture). Every child validates
 * locks of its own (a new dependency too) and exits; none may hang. Exit status 0 only if all
 * 50 children exited with 0. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 128
static pthread_mutex_t locks[N] = { [0 ... N - 1] = PTHREAD_MUTEX_INITIALIZER };
static pthread_mutex_t child_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t child_b = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop;

static void *busy(void *arg)
{
	(void)arg;
	/* Ascending pairs only: many new dependencies, no cycle. */
	for (unsigned i = 0; !atomic_load(&stop); i++) {
		unsigned x = i % (N - 1), y = x + 1 + (i / (N - 1)) % (N - 1 - x);
		if (y >= N)
			y = N - 1;
		pthread_mutex_lock(&locks[x]);
		pthread_mutex_lock(&locks[y]);
		pthread_mutex_unlock(&locks[y]);
		pthread_mutex_unlock(&locks[x]);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, busy, NULL);
	int ok = 0;
	for (int i = 0; i < 50; i++) {
		usleep(2000);
		pid_t pid = fork();
		if (pid == 0) {
			pthread_mutex_lock(&child_a);
			pthread_mutex_lock(&child_b);
			pthread_mutex_unlock(&child_b);
			pthread_mutex_unlock(&child_a);
			_exit(0);
		}
		int status;
		if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok++;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("%d children exited\n", ok);
	return ok == 50 ? 0 : 1;
}
