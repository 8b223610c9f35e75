/* Locks destroyed and initialised again at the same sites keep their classes (the init sites):
 * a -> b in the first round and b -> a in the second are circular. The memory of `a` is then
 * reused by an object of a third site, which must not inherit a's class: no more reports. */
#include <pthread.h>

static pthread_mutex_t a, b;

static void init_a(void) { pthread_mutex_init(&a, NULL); }
static void init_b(void) { pthread_mutex_init(&b, NULL); }

static void both(pthread_mutex_t *x, pthread_mutex_t *y)
{
	pthread_mutex_lock(x);
	pthread_mutex_lock(y);
	pthread_mutex_unlock(y);
	pthread_mutex_unlock(x);
}

int main(void)
{
	for (int round = 0; round < 2; round++) {
		init_a();
		init_b();
		if (round == 0)
			both(&a, &b);
		else
			both(&b, &a);
		pthread_mutex_destroy(&a);
		pthread_mutex_destroy(&b);
	}
	/* A new object at a's address, of a new class: b -> it is a new order, no cycle. */
	pthread_mutex_init(&a, NULL);
	init_b();
	both(&b, &a);
	both(&b, &a);
	pthread_mutex_destroy(&a);
	pthread_mutex_destroy(&b);
	return 0;
}
