/* 8 threads allocate, initialise, lock (always a before b), unlock and destroy objects from two
 * init sites, many times: one class per site, one order, no report; every thread finishes. */
#include <pthread.h>
#include <stdlib.h>

struct pair {
	pthread_mutex_t a;
	pthread_mutex_t b;
};

static struct pair *pair_new(void)
{
	struct pair *p = malloc(sizeof(*p));
	pthread_mutex_init(&p->a, NULL);
	pthread_mutex_init(&p->b, NULL);
	return p;
}

static void pair_free(struct pair *p)
{
	pthread_mutex_destroy(&p->b);
	pthread_mutex_destroy(&p->a);
	free(p);
}

static void *churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		struct pair *p = pair_new();
		pthread_mutex_lock(&p->a);
		pthread_mutex_lock(&p->b);
		pthread_mutex_unlock(&p->b);
		pthread_mutex_unlock(&p->a);
		pair_free(p);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	return 0;
}
