#include "shapes.h"
int main(void)
{
	lock_unlock_2(&a, &b);
	lock_unlock_2(&b, &c);
	lock_unlock_2(&c, &d);
	lock_unlock_2(&d, &a);
	return 0;
}
