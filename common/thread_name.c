#include "thread_name.h"

#include <sys/prctl.h>

void okv_thread_name(const char *name)
{
    /* Best effort: a thread without a name works the same. */
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
}
