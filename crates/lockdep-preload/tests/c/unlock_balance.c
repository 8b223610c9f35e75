#include "shapes.h"
int main(void)
{
	pthread_mutex_lock(&a);
	pthread_mutex_unlock(&a);
	pthread_mutex_unlock(&a);
	return 0;
}
