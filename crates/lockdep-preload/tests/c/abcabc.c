#include "shapes.h"
int main(void)
{
	lock_unlock_2(&a, &b);
	lock_unlock_2(&c, &a);
	lock_unlock_2(&b, &c);
	return 0;
}
