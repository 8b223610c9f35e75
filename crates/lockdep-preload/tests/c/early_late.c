/* Locks taken before main (a constructor), in a thread's TLS destructor (pthread key) and in an
 * atexit handler: handled or passed through, never a crash; the inversion made before main
 * and in main is found. */
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t early = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t late = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t key;

__attribute__((constructor)) static void before_main(void)
{
	pthread_mutex_lock(&early);
	pthread_mutex_lock(&late);
	pthread_mutex_unlock(&late);
	pthread_mutex_unlock(&early);
}

static void tls_destructor(void *value)
{
	(void)value;
	pthread_mutex_lock(&early);
	pthread_mutex_unlock(&early);
}

static void at_exit(void)
{
	pthread_mutex_lock(&late);
	pthread_mutex_unlock(&late);
}

static void *thread(void *arg)
{
	(void)arg;
	pthread_setspecific(key, (void *)1);
	return NULL;
}

int main(void)
{
	pthread_t t;
	pthread_key_create(&key, tls_destructor);
	atexit(at_exit);
	pthread_create(&t, NULL, thread, NULL);
	pthread_join(t, NULL);
	pthread_mutex_lock(&late);
	pthread_mutex_lock(&early);
	pthread_mutex_unlock(&early);
	pthread_mutex_unlock(&late);
	return 0;
}
