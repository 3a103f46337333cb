/* okv-jepsen-check: see cli.h. */
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv)
{
    return cli_run(argc, argv, stdout, stderr);
}
