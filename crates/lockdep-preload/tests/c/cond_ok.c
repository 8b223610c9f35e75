/* A producer and a consumer on a condvar, in a consistent order: no report. */
#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static int items;

static void *producer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&lock);
		items++;
		pthread_cond_signal(&ready);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, producer, NULL);
	for (int taken = 0; taken < 1000; taken++) {
		pthread_mutex_lock(&lock);
		while (items == 0)
			pthread_cond_wait(&ready, &lock);
		items--;
		pthread_mutex_unlock(&lock);
	}
	pthread_join(t, NULL);
	return 0;
}
