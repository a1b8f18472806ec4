/* SPDX-License-Identifier: MIT */
/* cli.h: the fedmesh command's subcommands. Each returns the exit status. */
#ifndef FMI_CLI_H
#define FMI_CLI_H

int fmi_cmd_run(int argc, char **argv);
int fmi_cmd_plugins(int argc, char **argv);
int fmi_cmd_bench(int argc, char **argv);

/* True when argv[i] is -h or --help. */
int fmi_cli_is_help(const char *a);

#endif /* FMI_CLI_H */
