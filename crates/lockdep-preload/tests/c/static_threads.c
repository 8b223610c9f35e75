/* Statically initialised mutexes, taken in opposite orders by two threads. */
#include <pthread.h>

pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void *reload(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&config_lock);
	pthread_mutex_lock(&log_lock);
	pthread_mutex_unlock(&log_lock);
	pthread_mutex_unlock(&config_lock);
	return NULL;
}

static void *rotate(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&log_lock);
	pthread_mutex_lock(&config_lock);
	pthread_mutex_unlock(&config_lock);
	pthread_mutex_unlock(&log_lock);
	return NULL;
}

int main(void)
{
	pthread_t t1, t2;
	pthread_create(&t1, NULL, reload, NULL);
	pthread_join(t1, NULL);
	pthread_create(&t2, NULL, rotate, NULL);
	pthread_join(t2, NULL);
	return 0;
}
