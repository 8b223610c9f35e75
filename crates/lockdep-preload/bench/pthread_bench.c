/* The cost of pthread locking: an uncontended lock/unlock of one mutex, and a nested pair
 * (a then b). Prints nanoseconds per lock/unlock pair (per pair of pairs for the nested case).
 * Times are the thread's CPU time (a loaded machine deschedules it; CPU time does not count
 * that). Usage: pthread_bench [ITERATIONS]. Run by bench/run.sh raw, under lockdep, helgrind
 * and TSan. With a second argument, `uncontended` or `nested`, it runs that loop once, untimed
 * and silent: what bench/run.sh counts instructions of under callgrind. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static double best_of(int rounds, long n, int nested)
{
	double best = 1e30;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		for (long i = 0; i < n; i++) {
			pthread_mutex_lock(&a);
			if (nested) {
				pthread_mutex_lock(&b);
				pthread_mutex_unlock(&b);
			}
			pthread_mutex_unlock(&a);
		}
		double per = (now() - t0) / n;
		if (per < best)
			best = per;
	}
	return best;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	/* Warm up: the first acquisitions take the validator's slow path. */
	best_of(1, 1000, 1);
	if (argc > 2) {
		best_of(1, n, strcmp(argv[2], "nested") == 0);
		return 0;
	}
	printf("uncontended %.2f\n", best_of(5, n, 0));
	printf("nested %.2f\n", best_of(5, n, 1));
	return 0;
}
