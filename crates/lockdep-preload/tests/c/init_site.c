/* Two objects initialised by one helper are one class (the init call site): nesting them is
 * recursive locking, as two mutex_init()ed locks of one site are in the kernel. */
#include <pthread.h>
#include <stdlib.h>

struct account {
	pthread_mutex_t lock;
	long balance;
};

static struct account *account_new(void)
{
	struct account *acct = calloc(1, sizeof(*acct));
	pthread_mutex_init(&acct->lock, NULL);
	return acct;
}

int main(void)
{
	struct account *from = account_new(), *to = account_new();
	pthread_mutex_lock(&from->lock);
	pthread_mutex_lock(&to->lock);
	to->balance += 10;
	from->balance -= 10;
	pthread_mutex_unlock(&to->lock);
	pthread_mutex_unlock(&from->lock);
	return 0;
}
