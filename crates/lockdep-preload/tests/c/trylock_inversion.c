/* b is only ever taken under a by trylock, which cannot deadlock: no report. And a trylock that
 * fails leaves nothing held: after a failed trylock of b, x is taken, and later b under x,
 * which would be circular if the failed trylock had counted as holding b. */
#include <pthread.h>
#include <errno.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t x = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t held, done;

static void *b_then_a(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&b);
	pthread_mutex_lock(&a);
	pthread_mutex_unlock(&a);
	pthread_mutex_unlock(&b);
	return NULL;
}

static void *hold_b(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&b);
	pthread_barrier_wait(&held);
	pthread_barrier_wait(&done);
	pthread_mutex_unlock(&b);
	return NULL;
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, b_then_a, NULL);
	pthread_join(t, NULL);
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&a);
		if (pthread_mutex_trylock(&b) == 0)
			pthread_mutex_unlock(&b);
		pthread_mutex_unlock(&a);
	}

	pthread_barrier_init(&held, NULL, 2);
	pthread_barrier_init(&done, NULL, 2);
	pthread_create(&t, NULL, hold_b, NULL);
	pthread_barrier_wait(&held);
	int rc = pthread_mutex_trylock(&b);
	pthread_mutex_lock(&x);
	pthread_mutex_unlock(&x);
	pthread_barrier_wait(&done);
	pthread_join(t, NULL);
	pthread_mutex_lock(&x);
	pthread_mutex_lock(&b);
	pthread_mutex_unlock(&b);
	pthread_mutex_unlock(&x);
	return rc == EBUSY ? 0 : 1;
}
