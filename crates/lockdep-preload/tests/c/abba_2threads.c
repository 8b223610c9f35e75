/* ABBA in two threads, one after the other: no thread ever blocks, the cycle is still found. */
#include "shapes.h"

static void *ab(void *arg) { (void)arg; lock_unlock_2(&a, &b); return NULL; }
static void *ba(void *arg) { (void)arg; lock_unlock_2(&b, &a); return NULL; }

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, ab, NULL);
	pthread_join(t, NULL);
	pthread_create(&t, NULL, ba, NULL);
	pthread_join(t, NULL);
	return 0;
}
